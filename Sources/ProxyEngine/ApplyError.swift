import Netlink
import Nftables
import ProxyCompiler
import ServiceModel

/// Why an apply failed: the kernel's error, and the Services whose elements the refused
/// operation carried, so a log line says which Service's data the kernel would not take.
public struct ApplyError: Error, CustomStringConvertible {
    /// What the kernel (or the netlink layer) reported.
    public var error: NetlinkError
    /// The Services the refused operation concerned, in name order; empty when it was
    /// about shared parts (a table, a chain, a set's declaration) or no operation is named.
    public var services: [ServiceName]

    public init(_ error: NetlinkError, services: [ServiceName] = []) {
        self.error = error
        self.services = services
    }

    public var description: String {
        guard !services.isEmpty else { return error.description }
        let names = services.prefix(5).map(\.description).joined(separator: ", ")
            + (services.count > 5 ? " and \(services.count - 5) more" : "")
        return "\(error) (Service \(names))"
    }

    /// The Services owning the elements of the operation `error` names in `transaction`.
    static func blaming(_ error: NetlinkError, in transaction: Transaction?, map: ServiceMap) -> ApplyError {
        guard case .rejected(let name, _, _) = error, let transaction,
              let operation = transaction.operations.first(where: { $0.summary == name }) else { return ApplyError(error) }
        let elements: ArraySlice<SetElement>
        let family: TableFamily
        switch operation {
        case .addElements(let table, _, _, let slice), .deleteElements(let table, _, _, let slice),
             .destroyElements(let table, _, _, let slice):
            elements = slice
            family = table
        default:
            return ApplyError(error)
        }
        let owners = FrontendOwners(map)
        let ipFamily: IPFamily = family == .ip ? .v4 : .v6
        var services = Set<ServiceName>()
        for element in elements {
            // Dispatch elements are keyed by the frontend; backend elements add a slot number.
            let key = ProgrammedFrontend.Key(elementKey: element.key, family: ipFamily)
                ?? ProgrammedFrontend.Key(elementKey: Array(element.key.dropLast()), family: ipFamily)
            if let key, let owner = owners[key] { services.insert(owner.service) }
        }
        return ApplyError(error, services: services.sorted())
    }
}
