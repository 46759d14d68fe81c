import ServiceModel

/// Services and EndpointSlices as `kubectl get services,endpointslices -A -o json|yaml`
/// prints them from a real cluster, for the end-to-end rows (`nftproxy-bench e2e`,
/// `nftproxy-bench objects`).
///
/// Every object carries what the API server returns: uid, resourceVersion,
/// creationTimestamp, labels, annotations (a Service the
/// `kubectl.kubernetes.io/last-applied-configuration` of `kubectl apply`, a slice
/// `endpoints.kubernetes.io/last-change-trigger-time`), managedFields with their fieldsV1
/// trees (`kubectl-client-side-apply` on Services, `kube-controller-manager` on slices,
/// `cloud-controller-manager` on the status of LoadBalancers), status, and on slices
/// generateName, generation and an ownerReference to the Service. Each endpoint has
/// addresses, conditions (ready, serving, terminating), nodeName, a targetRef to its Pod
/// and a zone.
///
/// The workload is `Workload`'s, so that the rules match the engine rows: service `i` has
/// ClusterIP `Workload.clusterIP(i)`, one port `http` TCP 80 → 8080, and `endpoints` ready
/// endpoints `Workload.endpointIP(i * endpoints + k)` on `node-<global index mod nodes>`.
/// Besides ClusterIP services, one in 50 is a NodePort and one in 200 a LoadBalancer with
/// an ingress IP from 203.0.113.0/24 (both get node ports from 30000 on; at most
/// `Workload.maximumNodePorts` of them, and at most 254 LoadBalancers). Services live in
/// namespaces of 50. Names, uids, times and pod names come from a seeded generator: the
/// same options give the same bytes.
///
/// `moved`: the variant in which one endpoint moved. The first endpoint of service
/// `services / 2` is a new pod at a new address (`Workload.endpointIP(replacementBase)`);
/// its slice has a new resourceVersion, generation and change time; every other byte is
/// the same.
struct RealisticCluster {
    var workload: Workload
    var seed: UInt64 = 1
    var moved = false

    enum Format: String, CaseIterable, Codable {
        case json, yaml
    }

    static let servicesPerNamespace = 50
    static let loadBalancerRange = (first: 1, last: 254)  // 203.0.113.1 ... .254

    /// The index of the service whose endpoint moves in the `moved` variant.
    var movedService: Int { workload.services / 2 }

    /// The address the moved endpoint has in the `moved` variant.
    static var movedAddress: IPAddress { Workload.endpointIP(Workload.replacementBase) }

    /// Writes the whole List through `write`, about 1 MiB at a time.
    func render(_ format: Format, _ write: (String) -> Void) {
        var out = ""
        func flush(force: Bool = false) {
            if force || out.utf8.count > 1 << 20 {
                write(out)
                out = ""
            }
        }
        let count = workload.services
        switch format {
        case .json:
            out += "{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n"
            for index in 0..<(2 * count) {
                let object = index < count ? service(index) : endpointSlice(index - count)
                out += "        " + KubectlJSON.render(object, level: 2) + (index + 1 < 2 * count ? ",\n" : "\n")
                flush()
            }
            out += "    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n"
        case .yaml:
            out += "apiVersion: v1\nitems:\n"
            for index in 0..<(2 * count) {
                let object = index < count ? service(index) : endpointSlice(index - count)
                out += KubectlYAML.render(object, indent: 2, firstPrefix: "- ")
                flush()
            }
            out += "kind: List\nmetadata:\n  resourceVersion: \"\"\n"
        }
        flush(force: true)
    }

    // MARK: - Kinds of services

    enum Kind { case clusterIP, nodePort, loadBalancer }

    func kind(_ index: Int) -> Kind {
        if index % 200 == 199, index / 200 < Self.loadBalancerRange.last, nodePortIndex(index) != nil { return .loadBalancer }
        if index % 50 == 49, nodePortIndex(index) != nil { return .nodePort }
        return .clusterIP
    }

    /// The how-many-th service with a node port this one is, if it gets one (every 50th).
    private func nodePortIndex(_ index: Int) -> Int? {
        let position = index / 50
        return index % 50 == 49 && position < Workload.maximumNodePorts ? position : nil
    }

    // MARK: - Names and generated facts

    private static let words = ["checkout", "payments", "catalog", "search", "orders", "inventory", "billing", "auth",
                                "profile", "cart", "shipping", "reviews", "ads", "email", "currency", "recommend",
                                "frontend", "gateway", "ledger", "metrics"]
    private static let roles = ["api", "web", "worker", "grpc", "backend", "cache", "svc", "internal"]

    func namespace(_ index: Int) -> String {
        let team = index / Self.servicesPerNamespace
        return "team-\(Self.words[team % Self.words.count])-\(team)"
    }

    func name(_ index: Int) -> String {
        "\(Self.words[(index / 7) % Self.words.count])-\(Self.roles[index % Self.roles.count])-\(index)"
    }

    /// Facts of one object, drawn from the seed and the object's own key, so that one
    /// object never depends on another.
    private func random(_ index: Int, _ salt: UInt64) -> SplitMix64 {
        SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(index) &* 0xBF58_476D_1CE4_E5B9 ^ salt)
    }

    /// 2024-03-01T00:00:00Z plus a few seconds per service: creation times spread over months.
    private static let epoch = 1_709_251_200

    // MARK: - Service

    func service(_ index: Int) -> KubectlValue {
        var rng = random(index, 1)
        let name = name(index), namespace = namespace(index)
        let kind = kind(index)
        let created = Self.epoch + index * 137 + Int(rng.next() % 60)
        let uid = rng.uuid()
        let labels: KubectlValue = .object([("app", .string(name)), ("app.kubernetes.io/name", .string(name)),
                                            ("app.kubernetes.io/part-of", .string(namespace))])
        let ip = Workload.clusterIP(index).description
        let nodePort = nodePortIndex(index).map { Workload.firstNodePort + $0 }

        var port: [(String, KubectlValue)] = [("name", .string(Workload.portName)), ("port", .int(Int(Workload.servicePort))),
                                              ("protocol", .string("TCP")), ("targetPort", .int(Int(Workload.targetPort)))]
        var spec: [(String, KubectlValue)] = [
            ("clusterIP", .string(ip)), ("clusterIPs", .array([.string(ip)])),
            ("internalTrafficPolicy", .string("Cluster")), ("ipFamilies", .array([.string("IPv4")])),
            ("ipFamilyPolicy", .string("SingleStack")), ("selector", .object([("app", .string(name))])),
            ("sessionAffinity", .string("None")),
        ]
        var applied: [(String, KubectlValue)] = [("selector", .object([("app", .string(name))]))]
        var status: KubectlValue = .object([("loadBalancer", .emptyObject)])
        if workload.trafficPolicies {
            // The policies of `Workload.service`, as the API server stores them.
            func set(_ field: String, _ value: KubectlValue) {
                if let at = spec.firstIndex(where: { $0.0 == field }) { spec[at].1 = value } else { spec.append((field, value)) }
                applied.append((field, value))
            }
            switch index % 10 {
            case 1:
                set("externalIPs", .array([.string(Workload.address(base: [198, 19, 128, 0], index: index / 10).description)]))
                set("externalTrafficPolicy", .string("Local"))
            case 2:
                set("internalTrafficPolicy", .string("Local"))
            case 3:
                set("sessionAffinity", .string("ClientIP"))
                set("sessionAffinityConfig", .object([("clientIP", .object([("timeoutSeconds", .int(10800))]))]))
            default: break
            }
        }
        switch kind {
        case .clusterIP:
            spec.append(("type", .string("ClusterIP")))
        case .nodePort, .loadBalancer:
            if let nodePort { port.append(("nodePort", .int(nodePort))) }
            spec.append(("externalTrafficPolicy", .string("Cluster")))
            let type = kind == .nodePort ? "NodePort" : "LoadBalancer"
            spec.append(("type", .string(type)))
            applied.append(("type", .string(type)))
            if kind == .loadBalancer {
                spec.append(("allocateLoadBalancerNodePorts", .bool(true)))
                let ingress = "203.0.113.\(Self.loadBalancerRange.first + index / 200)"
                status = .object([("loadBalancer", .object([("ingress", .array([
                    .object([("ip", .string(ingress)), ("ipMode", .string("VIP"))]),
                ]))]))])
            }
        }
        spec.append(("ports", .array([.object(port)])))
        applied.append(("ports", .array([.object(port.filter { $0.0 != "nodePort" })])))

        let lastApplied = KubectlValue.object([
            ("apiVersion", .string("v1")), ("kind", .string("Service")),
            ("metadata", .object([("annotations", .emptyObject), ("labels", labels), ("name", .string(name)),
                                  ("namespace", .string(namespace))])),
            ("spec", .object(applied)),
        ]).compactJSON + "\n"

        var managedFields: [KubectlValue] = [managedFieldsEntry(
            manager: "kubectl-client-side-apply", apiVersion: "v1", time: created,
            fields: serviceFields(labels: labels, kind: kind))]
        if kind == .loadBalancer {
            managedFields.append(managedFieldsEntry(
                manager: "cloud-controller-manager", apiVersion: "v1", time: created + 41,
                fields: .object([("f:status", .object([("f:loadBalancer", .object([("f:ingress", .emptyObject)]))]))]),
                subresource: "status"))
        }
        let metadata = KubectlValue.object([
            ("annotations", .object([("kubectl.kubernetes.io/last-applied-configuration", .string(lastApplied))])),
            ("creationTimestamp", .string(Self.timestamp(created))),
            ("labels", labels),
            ("managedFields", .array(managedFields)),
            ("name", .string(name)), ("namespace", .string(namespace)),
            ("resourceVersion", .string(String(1_000_000 + index * 23 + Int(rng.next() % 20)))),
            ("uid", .string(uid)),
        ])
        return .object([("apiVersion", .string("v1")), ("kind", .string("Service")), ("metadata", metadata),
                        ("spec", .object(spec)), ("status", status)])
    }

    /// The fields `kubectl apply` (client-side) owns on a Service.
    private func serviceFields(labels: KubectlValue, kind: Kind) -> KubectlValue {
        guard case .object(let labelMembers) = labels else { return .emptyObject }
        let owned = KubectlValue.emptyObject
        var spec: [(String, KubectlValue)] = [
            ("f:internalTrafficPolicy", owned),
            ("f:ports", .object([(".", owned), ("k:{\"port\":\(Workload.servicePort),\"protocol\":\"TCP\"}", .object([
                (".", owned), ("f:name", owned), ("f:port", owned), ("f:protocol", owned), ("f:targetPort", owned),
            ]))])),
            ("f:selector", owned), ("f:sessionAffinity", owned), ("f:type", owned),
        ]
        if kind != .clusterIP { spec.append(("f:externalTrafficPolicy", owned)) }
        if kind == .loadBalancer { spec.append(("f:allocateLoadBalancerNodePorts", owned)) }
        return .object([
            ("f:metadata", .object([
                ("f:annotations", .object([(".", owned), ("f:kubectl.kubernetes.io/last-applied-configuration", owned)])),
                ("f:labels", .object([(".", owned)] + labelMembers.map { ("f:" + $0.0, owned) })),
            ])),
            ("f:spec", .object(spec)),
        ])
    }

    private func managedFieldsEntry(manager: String, apiVersion: String, time: Int, fields: KubectlValue,
                                    subresource: String? = nil) -> KubectlValue {
        var members: [(String, KubectlValue)] = [
            ("apiVersion", .string(apiVersion)), ("fieldsType", .string("FieldsV1")), ("fieldsV1", fields),
            ("manager", .string(manager)), ("operation", .string("Update")), ("time", .string(Self.timestamp(time))),
        ]
        if let subresource { members.append(("subresource", .string(subresource))) }
        return .object(members)
    }

    // MARK: - EndpointSlice

    func endpointSlice(_ index: Int) -> KubectlValue {
        var serviceRandom = random(index, 1)
        let serviceCreated = Self.epoch + index * 137 + Int(serviceRandom.next() % 60)
        let serviceUID = serviceRandom.uuid()
        var rng = random(index, 2)
        let name = name(index), namespace = namespace(index)
        let sliceName = "\(name)-\(rng.word(5))"
        let podTemplateHash = rng.word(10)
        let uid = rng.uuid()
        let isMoved = moved && index == movedService
        let changed = serviceCreated + 95 + Int(rng.next() % 300) + (isMoved ? 86_400 : 0)
        var generation = 1 + Int(rng.next() % 6)
        var resourceVersion = 1_000_000 + index * 23 + 11 + Int(rng.next() % 10)
        if isMoved {
            generation += 1
            resourceVersion += 50_000_000
        }

        var endpoints: [KubectlValue] = []
        for offset in 0..<workload.endpoints {
            let global = index * workload.endpoints + offset
            var address = Workload.endpointIP(global)
            var podRandom = random(global, 3)
            if isMoved && offset == 0 {
                address = Self.movedAddress
                podRandom = random(global, 4)
            }
            let podName = "\(name)-\(podTemplateHash)-\(podRandom.word(5))"
            let node = workload.nodeName(ofEndpoint: global)
            var endpoint: [(String, KubectlValue)] = [
                ("addresses", .array([.string(address.description)])),
                ("conditions", .object([("ready", .bool(true)), ("serving", .bool(true)), ("terminating", .bool(false))])),
                ("targetRef", .object([("kind", .string("Pod")), ("name", .string(podName)),
                                       ("namespace", .string(namespace)), ("uid", .string(podRandom.uuid()))])),
            ]
            if let node {
                endpoint.append(("nodeName", .string(node)))
                endpoint.append(("zone", .string(Self.zone(ofNode: global % workload.nodes))))
            }
            endpoints.append(.object(endpoint))
        }

        let labels: [(String, KubectlValue)] = [
            ("app", .string(name)), ("app.kubernetes.io/name", .string(name)), ("app.kubernetes.io/part-of", .string(namespace)),
            ("endpointslice.kubernetes.io/managed-by", .string("endpointslice-controller.k8s.io")),
            ("kubernetes.io/service-name", .string(name)),
        ]
        let owned = KubectlValue.emptyObject
        let fields = KubectlValue.object([
            ("f:addressType", owned), ("f:endpoints", owned),
            ("f:metadata", .object([
                ("f:annotations", .object([(".", owned), ("f:endpoints.kubernetes.io/last-change-trigger-time", owned)])),
                ("f:generateName", owned),
                ("f:labels", .object([(".", owned)] + labels.map { ("f:" + $0.0, owned) })),
                ("f:ownerReferences", .object([(".", owned), ("k:{\"uid\":\"\(serviceUID)\"}", owned)])),
            ])),
            ("f:ports", owned),
        ])
        let metadata = KubectlValue.object([
            ("annotations", .object([("endpoints.kubernetes.io/last-change-trigger-time", .string(Self.timestamp(changed)))])),
            ("creationTimestamp", .string(Self.timestamp(serviceCreated + 1))),
            ("generateName", .string(name + "-")),
            ("generation", .int(generation)),
            ("labels", .object(labels)),
            ("managedFields", .array([managedFieldsEntry(manager: "kube-controller-manager", apiVersion: "discovery.k8s.io/v1",
                                                         time: changed + 1, fields: fields)])),
            ("name", .string(sliceName)), ("namespace", .string(namespace)),
            ("ownerReferences", .array([.object([
                ("apiVersion", .string("v1")), ("blockOwnerDeletion", .bool(true)), ("controller", .bool(true)),
                ("kind", .string("Service")), ("name", .string(name)), ("uid", .string(serviceUID)),
            ])])),
            ("resourceVersion", .string(String(resourceVersion))),
            ("uid", .string(uid)),
        ])
        return .object([
            ("addressType", .string("IPv4")), ("apiVersion", .string("discovery.k8s.io/v1")),
            ("endpoints", .array(endpoints)), ("kind", .string("EndpointSlice")), ("metadata", metadata),
            ("ports", .array([.object([("name", .string(Workload.portName)), ("port", .int(Int(Workload.targetPort))),
                                       ("protocol", .string("TCP"))])])),
        ])
    }

    private static func zone(ofNode node: Int) -> String {
        "eu-west-1" + ["a", "b", "c"][node % 3]
    }

    /// RFC 3339 in UTC, as the API server writes times: "2024-03-01T00:00:00Z".
    static func timestamp(_ seconds: Int) -> String {
        let days = seconds / 86_400, rest = seconds % 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))Z"
    }
}

/// A small deterministic random generator (SplitMix64): the same seed, the same stream.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A random (version 4) UUID in its usual lowercase form.
    mutating func uuid() -> String {
        let high = next(), low = next()
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        bytes[6] = bytes[6] & 0x0f | 0x40
        bytes[8] = bytes[8] & 0x3f | 0x80
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
            + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    /// `count` characters of the alphabet Kubernetes uses for generated name suffixes.
    mutating func word(_ count: Int) -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<count).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] })
    }
}
