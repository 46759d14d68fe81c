/// The workload as Kubernetes objects, a YAML stream of a `v1 Service` and a
/// `discovery.k8s.io/v1 EndpointSlice` per service, for `nftproxy dump -f` / `apply -f`.
/// `nftproxy dump -f FILE --cluster-cidr 100.64.0.0/10` prints what `generate --format
/// nftproxy` prints.
struct KubernetesYAML {
    var workload: Workload

    /// Writes the stream through `write`, about 1 MiB at a time.
    func render(_ write: (String) -> Void) {
        var out = ""
        for index in 0..<workload.services {
            out += objects(index)
            if out.utf8.count > 1 << 20 {
                write(out)
                out = ""
            }
        }
        write(out)
    }

    private func objects(_ index: Int) -> String {
        let name = Workload.serviceName(index)
        let ip = Workload.clusterIP(index)
        let nodePort = workload.nodePort(index)
        var out = """
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: \(name.name)
              namespace: \(name.namespace)
            spec:
              type: \(nodePort == nil ? "ClusterIP" : "NodePort")
              clusterIP: \(ip)
              clusterIPs: [\(ip)]
              ipFamilies: [IPv4]
              ports:
                - name: \(Workload.portName)
                  protocol: TCP
                  port: \(Workload.servicePort)
                  targetPort: \(Workload.targetPort)

            """
        if let nodePort { out += "      nodePort: \(nodePort)\n" }
        out += """
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: \(name.name)-bench
              namespace: \(name.namespace)
              labels:
                kubernetes.io/service-name: \(name.name)
            addressType: IPv4
            ports:
              - name: \(Workload.portName)
                protocol: TCP
                port: \(Workload.targetPort)
            endpoints:

            """
        for (offset, address) in workload.endpointAddresses(index).enumerated() {
            out += "  - addresses: [\"\(address)\"]\n    conditions: {ready: true, serving: true, terminating: false}\n"
            if let node = workload.nodeName(ofEndpoint: index * workload.endpoints + offset) {
                out += "    nodeName: \(node)\n"
            }
        }
        return out
    }
}
