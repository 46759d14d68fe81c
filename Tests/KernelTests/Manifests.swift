/// Kubernetes objects for the kernel tests.
enum Manifests {
    /// The echo-server NodePort, a dual-stack LoadBalancer, a UDP service and one without endpoints.
    static let first = """
    apiVersion: v1
    kind: Service
    metadata: {name: echo-server, namespace: default}
    spec:
      type: NodePort
      clusterIP: 198.18.0.10
      clusterIPs: [198.18.0.10]
      ports: [{name: http, port: 80, targetPort: http, nodePort: 32000, protocol: TCP}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: echo-server-abc12
      namespace: default
      labels: {kubernetes.io/service-name: echo-server}
    addressType: IPv4
    ports: [{name: http, port: 8080, protocol: TCP}]
    endpoints:
    - {addresses: [198.19.1.11], conditions: {ready: true}, nodeName: node-1}
    - {addresses: [198.19.1.12], conditions: {ready: true}, nodeName: node-1}
    - {addresses: [198.19.1.13], conditions: {ready: true}, nodeName: node-1}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: shop}
    spec:
      type: LoadBalancer
      ipFamilyPolicy: PreferDualStack
      clusterIP: 198.18.0.20
      clusterIPs: [198.18.0.20, "2001:db8:5::20"]
      externalIPs: [203.0.113.7]
      ports:
      - {name: https, port: 443, targetPort: 8443, nodePort: 30443, protocol: TCP}
      - {name: dns, port: 53, targetPort: 5353, nodePort: 30053, protocol: UDP}
    status:
      loadBalancer:
        ingress: [{ip: 203.0.113.8}, {ip: "2001:db8:203::8"}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: web-v4
      namespace: shop
      labels: {kubernetes.io/service-name: web}
    addressType: IPv4
    ports: [{name: https, port: 8443, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
    endpoints:
    - {addresses: [198.19.1.31], nodeName: node-1}
    - {addresses: [198.19.2.31], nodeName: node-2}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: web-v6
      namespace: shop
      labels: {kubernetes.io/service-name: web}
    addressType: IPv6
    ports: [{name: https, port: 8443, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
    endpoints:
    - {addresses: ["2001:db8:1:1::31"], nodeName: node-1}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: empty, namespace: default}
    spec:
      clusterIP: 198.18.0.99
      ports: [{name: web, port: 80, protocol: TCP}, {name: sig, port: 9999, protocol: SCTP}]
    """

    /// The same cluster later: echo-server scaled to 2, web lost its IPv6 endpoint, empty got one.
    static let second = first
        .replacingOccurrences(of: "    - {addresses: [198.19.1.13], conditions: {ready: true}, nodeName: node-1}\n", with: "")
        .replacingOccurrences(of: "    - {addresses: [\"2001:db8:1:1::31\"], nodeName: node-1}\n", with: "")
        + """

        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: empty-1
          namespace: default
          labels: {kubernetes.io/service-name: empty}
        addressType: IPv4
        ports: [{name: web, port: 8080, protocol: TCP}]
        endpoints:
        - {addresses: [198.19.1.51]}
        """

    /// `second` with traffic policies Local: the web LoadBalancer turns externalTrafficPolicy
    /// Local, and services with internalTrafficPolicy Local (one endpoint here, none here)
    /// and a rolling update of a Local service (the local endpoint only terminating) join.
    static let trafficPolicies = second
        .replacingOccurrences(of: "  type: LoadBalancer\n",
                              with: "  type: LoadBalancer\n  externalTrafficPolicy: Local\n"
                                + "  loadBalancerSourceRanges: [198.51.100.0/24, 192.0.2.0/24, \"2001:db8:9::/48\"]\n")
        + """

        ---
        apiVersion: v1
        kind: Service
        metadata: {name: node-cache, namespace: kube-system}
        spec:
          clusterIP: 198.18.0.33
          internalTrafficPolicy: Local
          ports: [{name: dns, port: 53, targetPort: 5353, protocol: UDP}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: node-cache-1
          namespace: kube-system
          labels: {kubernetes.io/service-name: node-cache}
        addressType: IPv4
        ports: [{name: dns, port: 5353, protocol: UDP}]
        endpoints:
        - {addresses: [198.19.1.81], nodeName: node-1}
        - {addresses: [198.19.2.81], nodeName: node-2}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: elsewhere, namespace: kube-system}
        spec:
          clusterIP: 198.18.0.34
          internalTrafficPolicy: Local
          ports: [{port: 80, protocol: TCP}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: elsewhere-1
          namespace: kube-system
          labels: {kubernetes.io/service-name: elsewhere}
        addressType: IPv4
        ports: [{port: 80, protocol: TCP}]
        endpoints:
        - {addresses: [198.19.2.91], nodeName: node-2}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: rolling, namespace: shop}
        spec:
          type: NodePort
          externalTrafficPolicy: Local
          clusterIP: 198.18.0.32
          externalIPs: [203.0.113.32]
          ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30032, protocol: TCP}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: rolling-1
          namespace: shop
          labels: {kubernetes.io/service-name: rolling}
        addressType: IPv4
        ports: [{name: http, port: 8080, protocol: TCP}]
        endpoints:
        - {addresses: [198.19.1.71], conditions: {ready: false, serving: true, terminating: true}, nodeName: node-1}
        - {addresses: [198.19.2.71], nodeName: node-2}
        """

    /// `trafficPolicies` with sessionAffinity ClientIP on the web LoadBalancer (600 s, with
    /// its Local policy and source ranges), the echo-server NodePort and node-cache (default
    /// timeout, internalTrafficPolicy Local).
    static let sessionAffinity = trafficPolicies
        .replacingOccurrences(of: "  type: LoadBalancer\n",
                              with: "  type: LoadBalancer\n  sessionAffinity: ClientIP\n"
                                + "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}\n")
        .replacingOccurrences(of: "  type: NodePort\n", with: "  type: NodePort\n  sessionAffinity: ClientIP\n")
        .replacingOccurrences(of: "  internalTrafficPolicy: Local\n  ports: [{name: dns",
                              with: "  internalTrafficPolicy: Local\n  sessionAffinity: ClientIP\n  ports: [{name: dns")
}
