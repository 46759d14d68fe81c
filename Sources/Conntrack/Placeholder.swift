// Conntrack module
