import ArgumentParser
import Foundation
import Nftables
import ProxyCompiler
import ProxyEngine
import ServiceModel

/// `nftproxy plan`: what `apply` would change on this node, without committing anything.
struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what apply would change on this node, per Service and as kernel operations, without committing.",
        discussion: """
            Reads nftproxy's tables back from the kernel, compiles the inputs, and prints the frontends \
            that would appear, go or balance to other endpoints (per Service), then the kernel operations \
            the apply would commit. With --detailed-exitcode the status is 0 when nothing would change, 2 \
            when something would, and 1 on an error.
            """)

    @OptionGroup var inputs: InputOptions
    @OptionGroup var node: NodeOptions
    @OptionGroup var namespace: NamespaceOptions

    @Flag(help: "Exit 0 when nothing would change, 2 when something would (1 on errors).")
    var detailedExitcode = false

    @Flag(name: [.customShort("v"), .long], help: "List every element of every operation.")
    var verbose = false

    @Option(name: .customShort("o"), help: "text or json.")
    var output = "text"

    func validate() throws {
        if !["text", "json"].contains(output) { throw ValidationError("-o: \(output) is neither text nor json") }
    }

    func run() throws {
        let (services, printed) = try loadServices(inputs)
        let config = try node.nodeConfig()
        let plan: ApplyPlan
        do {
            plan = try ServiceProxy(node: config, networkNamespace: namespace.networkNamespace).plan(services)
        } catch {
            printError("nftproxy: error: \(error)")
            throw ExitCode(1)
        }
        plan.warnings.filter { !printed.contains($0) }.forEach { printError($0.text) }
        let owners = FrontendOwners(services)
        print(output == "json" ? PlanDocument(plan, owners: owners).json : text(plan, owners: owners))
        if detailedExitcode && !plan.isEmpty { throw ExitCode(2) }
    }

    private func text(_ plan: ApplyPlan, owners: FrontendOwners) -> String {
        guard !plan.isEmpty else { return "No changes: the kernel already holds this ruleset." }
        var lines: [String] = []
        var byService: [ServiceName: [String]] = [:]
        var unclaimed: [String] = []
        for change in plan.frontendChanges {
            let owner = owners[change.key]
            let line = "  " + describe(change, portName: owner?.portName)
            if let owner { byService[owner.service, default: []].append(line) } else { unclaimed.append(line) }
        }
        for service in byService.keys.sorted() {
            lines.append("Service \(service):")
            lines += byService[service] ?? []
        }
        if !unclaimed.isEmpty {
            lines.append("Frontends no Service in the inputs claims:")
            lines += unclaimed
        }
        if !lines.isEmpty { lines.append("") }
        let operations = plan.transaction.operations
        lines.append("Kernel operations (\(operations.count), in one transaction):")
        for operation in operations {
            lines.append("  " + operation.summary)
            if verbose, let elements = operation.elements {
                lines += elements.map { "    " + ScriptRenderer().render($0) }
            }
        }
        let added = plan.frontendChanges.filter { $0.before == nil }.count
        let removed = plan.frontendChanges.filter { $0.after == nil }.count
        let changed = plan.frontendChanges.count - added - removed
        let elementsAdded = operations.reduce(0) { $0 + ($1.isElementAddition ? $1.elements?.count ?? 0 : 0) }
        let elementsRemoved = operations.reduce(0) { $0 + ($1.isElementDeletion ? $1.elements?.count ?? 0 : 0) }
        lines.append("")
        lines.append("Plan: \(added) frontends to add, \(changed) to change, \(removed) to remove; "
                     + "\(operations.count) kernel operations (\(elementsAdded) elements added, \(elementsRemoved) removed).")
        return lines.joined(separator: "\n")
    }

    private func describe(_ change: FrontendChange, portName: String?) -> String {
        let kind = (change.after ?? change.before).map(Self.kindName) ?? "frontend"
        let port = portName.map { $0.isEmpty ? "" : " (port \($0))" } ?? ""
        let what = change.key.address == nil ? "\(change.key)\(port)" : "\(kind) \(change.key)\(port)"
        switch (change.before, change.after) {
        case (nil, let after?):
            return "+ \(what) -> " + Self.targets(after)
        case (let before?, nil):
            return "- \(what) (was -> \(Self.targets(before)))"
        default:
            let moves = change.addedTargets.map { "+ \($0)" } + change.removedTargets.map { "- \($0)" }
            if moves.isEmpty, let after = change.after, after.localTargets != change.before?.localTargets {
                return "~ \(what) -> " + Self.targets(after)
            }
            return "~ \(what): " + (moves.isEmpty ? "now \(kind)" : moves.joined(separator: ", "))
        }
    }

    static func kindName(_ frontend: ProgrammedFrontend) -> String {
        switch frontend.kind {
        case .clusterIP: return "ClusterIP"
        case .external: return "external IP"
        case .nodePort: return "NodePort"
        }
    }

    static func targets(_ frontend: ProgrammedFrontend) -> String {
        func list(_ targets: [ProgrammedFrontend.Target]) -> String { targets.map(\.description).joined(separator: ", ") }
        switch (frontend.targets.isEmpty, frontend.localTargets) {
        case (true, nil): return "no endpoints (refused)"
        case (true, _?): return "none on this node (dropped)"
        case (false, nil): return list(frontend.targets)
        case (false, let local?):
            // externalTrafficPolicy Local: external clients get the node's own endpoints.
            return list(frontend.targets) + "; external traffic -> " + (local.isEmpty ? "dropped (none on this node)" : list(local))
        }
    }
}

extension Nftables.Operation {
    /// The elements an element operation adds or deletes; nil for other operations.
    var elements: ArraySlice<SetElement>? {
        switch self {
        case .addElements(_, _, _, let elements), .deleteElements(_, _, _, let elements),
             .destroyElements(_, _, _, let elements): return elements
        default: return nil
        }
    }

    var isElementAddition: Bool { if case .addElements = self { return true } else { return false } }
    var isElementDeletion: Bool {
        switch self {
        case .deleteElements, .destroyElements: return true
        default: return false
        }
    }
}

/// The JSON shape of a plan.
private struct PlanDocument: Encodable {
    struct Frontend: Encodable {
        var change: String, kind: String, frontend: String, service: String?, port: String?
        var added: [String], removed: [String], endpoints: [String]
    }
    struct Step: Encodable { var operation: String, elements: [String]? }

    var changes: Bool
    var frontends: [Frontend]
    var operations: [Step]

    init(_ plan: ApplyPlan, owners: FrontendOwners) {
        changes = !plan.isEmpty
        frontends = plan.frontendChanges.map { change in
            let owner = owners[change.key]
            return Frontend(change: change.before == nil ? "add" : change.after == nil ? "remove" : "change",
                            kind: (change.after ?? change.before).map(Plan.kindName) ?? "",
                            frontend: change.key.description, service: owner?.service.description, port: owner?.portName,
                            added: change.addedTargets.map(\.description), removed: change.removedTargets.map(\.description),
                            endpoints: (change.after?.targets ?? []).map(\.description))
        }
        operations = plan.transaction.operations.map {
            Step(operation: $0.summary, elements: $0.elements.map { $0.map { ScriptRenderer().render($0) } })
        }
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
