import ServiceModel

/// Updates of the daemon's name-sorted list of served services, in place: a few changed
/// services are found by binary search (a change costs what changed, whatever the number of
/// services), many (a first list, a re-list) are merged in one pass.
enum ServedServices {
    /// Above this many changes, one merge pass over the list is cheaper than an insertion each.
    static let mergeThreshold = 64

    /// Puts each update's service in its place in `list` (sorted by name, no name twice),
    /// or removes the service of that name when the update's service is nil.
    static func update(_ list: inout [Service], with updates: [(name: ServiceName, service: Service?)]) {
        if updates.count > mergeThreshold {
            merge(&list, with: updates)
            return
        }
        for (name, service) in updates {
            let index = list.position(of: name)
            let present = index < list.count && list[index].name == name
            switch (present, service) {
            case (true, let service?): list[index] = service
            case (true, nil): list.remove(at: index)
            case (false, let service?): list.insert(service, at: index)
            case (false, nil): break
            }
        }
    }

    /// One pass over `list` and the sorted updates.
    private static func merge(_ list: inout [Service], with updates: [(name: ServiceName, service: Service?)]) {
        let sorted = updates.sorted { $0.name < $1.name }
        var result: [Service] = []
        result.reserveCapacity(list.count + sorted.count)
        var i = 0
        for (index, update) in sorted.enumerated() {
            if index > 0 && sorted[index - 1].name == update.name { continue }
            while i < list.count && list[i].name < update.name {
                result.append(list[i])
                i += 1
            }
            if i < list.count && list[i].name == update.name { i += 1 }
            if let service = update.service { result.append(service) }
        }
        result.append(contentsOf: list[i...])
        list = result
    }
}
