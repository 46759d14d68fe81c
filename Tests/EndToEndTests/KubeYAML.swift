import Sandbox

/// Kubernetes objects for the service tests, written as `kubectl get -o yaml` prints them
/// (trimmed): what `nftproxy apply -f` reads.
enum KubeYAML {
    struct Port {
        var name: String = ""
        var proto: String = "TCP"
        var port: UInt16
        var targetPort: String
        var nodePort: UInt16? = nil
    }

    /// A Service. `type` is ClusterIP, NodePort or LoadBalancer; two cluster IPs make it
    /// dual-stack (RequireDualStack, families in the order given).
    static func service(_ name: String, type: String = "ClusterIP", clusterIPs: [String], ports: [Port],
                        externalIPs: [String] = [], loadBalancerIngress: [String] = []) -> String {
        let families = clusterIPs.map { $0.contains(":") ? "IPv6" : "IPv4" }
        var lines = [
            "apiVersion: v1",
            "kind: Service",
            "metadata:",
            "  name: \(name)",
            "  namespace: default",
            "spec:",
            "  type: \(type)",
            "  selector:",
            "    app: \(name)",
            "  clusterIP: \(clusterIPs[0])",
            "  clusterIPs:",
        ]
        lines += clusterIPs.map { "    - \($0)" }
        lines += ["  ipFamilies:"] + families.map { "    - \($0)" }
        lines.append("  ipFamilyPolicy: \(clusterIPs.count > 1 ? "RequireDualStack" : "SingleStack")")
        if type != "ClusterIP" { lines.append("  externalTrafficPolicy: Cluster") }
        if !externalIPs.isEmpty { lines += ["  externalIPs:"] + externalIPs.map { "    - \($0)" } }
        lines.append("  ports:")
        for port in ports {
            lines.append("    - name: \"\(port.name)\"")
            lines.append("      protocol: \(port.proto)")
            lines.append("      port: \(port.port)")
            lines.append("      targetPort: \(port.targetPort)")
            if let nodePort = port.nodePort { lines.append("      nodePort: \(nodePort)") }
        }
        if !loadBalancerIngress.isEmpty {
            lines += ["status:", "  loadBalancer:", "    ingress:"] + loadBalancerIngress.map { "      - ip: \($0)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Conditions of one endpoint.
    struct Conditions {
        var ready = true, serving = true, terminating = false
        static let ready = Conditions()
        /// A pod shutting down that still serves (kube-proxy uses these when no endpoint is ready).
        static let servingTerminating = Conditions(ready: false, serving: true, terminating: true)
        /// A pod shutting down that no longer serves.
        static let terminating = Conditions(ready: false, serving: false, terminating: true)
    }

    /// An EndpointSlice of `service` with endpoints at the pods' addresses of one family,
    /// ready unless `conditions` says otherwise for a pod name; `ports` are (name, protocol,
    /// number) as the control plane resolves them.
    static func endpointSlice(_ name: String, service: String, ipv6: Bool = false,
                              ports: [(name: String, proto: String, port: UInt16)], pods: [Pod],
                              conditions: [String: Conditions] = [:]) -> String {
        var lines = [
            "apiVersion: discovery.k8s.io/v1",
            "kind: EndpointSlice",
            "metadata:",
            "  name: \(name)",
            "  namespace: default",
            "  labels:",
            "    kubernetes.io/service-name: \(service)",
            "addressType: \(ipv6 ? "IPv6" : "IPv4")",
            "ports:",
        ]
        for port in ports {
            lines += ["  - name: \"\(port.name)\"", "    protocol: \(port.proto)", "    port: \(port.port)"]
        }
        lines.append(pods.isEmpty ? "endpoints: []" : "endpoints:")
        for pod in pods {
            let state = conditions[pod.name] ?? .ready
            lines += [
                "  - addresses:",
                "      - \(pod.address(ipv6: ipv6))",
                "    conditions:",
                "      ready: \(state.ready)",
                "      serving: \(state.serving)",
                "      terminating: \(state.terminating)",
                "    nodeName: \(pod.node)",
                "    targetRef:",
                "      kind: Pod",
                "      namespace: default",
                "      name: \(pod.name)",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Joins objects into one YAML stream.
    static func stream(_ objects: [String]) -> String {
        objects.map { "---\n" + $0 }.joined()
    }
}
