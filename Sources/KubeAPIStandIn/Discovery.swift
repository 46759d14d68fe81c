/// The discovery documents kubectl reads before it lists anything: /version, /api, /apis
/// and the resource lists of each group version.
enum Discovery {
    static func version() -> [UInt8] {
        Responses.json([
            "major": "1", "minor": "32", "gitVersion": "v1.32.0-nftproxy-standin", "gitCommit": "standin",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
            "compiler": "gc", "platform": "linux/amd64",
        ])
    }

    static func coreVersions(serverAddress: String) -> [UInt8] {
        Responses.json([
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": serverAddress]],
        ])
    }

    static func groups() -> [UInt8] {
        var groups: [[String: Any]] = []
        var seen = Set<String>()
        for resource in ServedResource.all where !resource.group.isEmpty && seen.insert(resource.group).inserted {
            let version: [String: Any] = ["groupVersion": resource.apiVersion, "version": resource.version]
            groups.append(["name": resource.group, "versions": [version], "preferredVersion": version])
        }
        return Responses.json(["kind": "APIGroupList", "apiVersion": "v1", "groups": groups])
    }

    /// The APIResourceList of `groupVersion` (`v1` or `discovery.k8s.io/v1`), nil if not served.
    static func resources(groupVersion: String) -> [UInt8]? {
        let served = ServedResource.all.filter { $0.apiVersion == groupVersion }
        guard !served.isEmpty else { return nil }
        let resources: [[String: Any]] = served.map { resource in
            [
                "name": resource.plural, "singularName": resource.singular, "namespaced": resource.namespaced,
                "kind": resource.kind, "verbs": ["get", "list", "watch"], "shortNames": resource.shortNames,
            ]
        }
        return Responses.json(["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": groupVersion,
                               "resources": resources])
    }
}
