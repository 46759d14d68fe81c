import Foundation
import KubeAPIStandIn
import Sandbox
import XCTest

/// deploy/: the DaemonSet's arguments pass `nftproxy run --check-config`, the systemd unit
/// passes `systemd-analyze verify`, and the container image built by tools/build-image.sh
/// runs `nftproxy --version` and `nftproxy dump` in its own root filesystem (podman cannot
/// run containers here, so the image is unpacked and its binary run under chroot, in a
/// private mount namespace with its own /proc).
final class DeploymentTests: XCTestCase {
    private var nftproxy = ""
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
        nftproxy = try BuiltProducts.path(of: "nftproxy")
    }

    private func path(_ relative: String) -> String { repository.appendingPathComponent(relative).path }

    /// The container's `args` in deploy/daemonset.yaml.
    private func daemonSetArguments() throws -> [String] {
        let lines = try String(contentsOfFile: path("deploy/daemonset.yaml"), encoding: .utf8).split(separator: "\n")
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "args:" }) else { return [] }
        let indent = lines[start].prefix { $0 == " " }.count
        var arguments: [String] = []
        for line in lines[(start + 1)...] {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard line.prefix(while: { $0 == " " }).count > indent, trimmed.hasPrefix("- ") else { break }
            arguments.append(String(trimmed.dropFirst(2)))
        }
        return arguments
    }

    func testDaemonSetArgumentsPassCheckConfig() throws {
        let arguments = try daemonSetArguments()
        XCTAssertEqual(arguments.first, "run")
        XCTAssertGreaterThan(arguments.count, 3, "\(arguments)")
        let directory = NSTemporaryDirectory() + "nftproxy-deploy-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = try TestCertificates.make(in: directory)
        let kubeconfig = directory + "/kubeconfig", token = directory + "/token"
        try Data("t".utf8).write(to: URL(fileURLWithPath: token))
        try KubeconfigFile.write(to: kubeconfig, server: "https://127.0.0.1:6443", caPath: certificates.caCertificatePath,
                                 tokenFile: token)
        let checked = try CommandRunner().run(["/usr/bin/env", "NODE_NAME=node-1", nftproxy] + arguments
                                              + ["--kubeconfig", kubeconfig, "--check-config"], timeout: .seconds(30))
        XCTAssertEqual(checked.status, 0, "\(checked.stdout)\n\(checked.stderr)")
        XCTAssertTrue(checked.stdout.contains("configuration is valid: node node-1"), checked.stdout)

        let wrong = try CommandRunner().run([nftproxy] + arguments + ["--kubeconfig", kubeconfig, "--check-config",
                                                                      "--min-sync-period", "soon"])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.stderr.contains("--min-sync-period: soon is not a duration"), wrong.stderr)
    }

    func testSystemdUnitVerifies() throws {
        guard let analyze = CommandRunner.resolveExecutable("systemd-analyze") else {
            throw XCTSkip("systemd-analyze is missing (tools/install-deps.sh installs systemd)")
        }
        let directory = NSTemporaryDirectory() + "nftproxy-unit-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The unit as shipped, with the binary where this build has it.
        let unit = try String(contentsOfFile: path("deploy/systemd/nftproxy.service"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/nftproxy", with: nftproxy)
        try unit.write(toFile: directory + "/nftproxy.service", atomically: true, encoding: .utf8)
        let verified = try CommandRunner().run([analyze, "verify", directory + "/nftproxy.service"], timeout: .seconds(60))
        XCTAssertEqual(verified.status, 0, "\(verified.stdout)\n\(verified.stderr)")
        let complaints = verified.stderr.split(separator: "\n").filter { $0.contains("nftproxy.service") }
        XCTAssertTrue(complaints.isEmpty, complaints.joined(separator: "\n"))
    }

    func testImageRunsItsBinaryUnderChroot() throws {
        guard let podman = CommandRunner.resolveExecutable("podman") else {
            throw XCTSkip("podman is missing (tools/install-deps.sh installs it)")
        }
        let tag = "localhost/nftproxy-test:\(getpid())"
        let built = try CommandRunner().run(["bash", path("tools/build-image.sh"), "--binary", nftproxy, "--tag", tag],
                                            timeout: .seconds(300))
        XCTAssertEqual(built.status, 0, "\(built.stdout)\n\(built.stderr)")
        defer { _ = try? CommandRunner().run([podman, "rmi", "-f", tag], timeout: .seconds(60)) }
        let mounted = try CommandRunner().runChecked([podman, "image", "mount", tag], timeout: .seconds(60))
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let root = NSTemporaryDirectory() + "nftproxy-image-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try CommandRunner().runChecked(["cp", "-a", mounted + "/.", root + "/"], timeout: .seconds(120))
        _ = try? CommandRunner().run([podman, "image", "unmount", tag], timeout: .seconds(60))
        try FileManager.default.copyItem(atPath: path("examples/echo-server.yaml"), toPath: root + "/tmp/echo-server.yaml")
        let entries = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        XCTAssertEqual(entries, ["etc", "lib", "lib64", "opt", "proc", "sys", "tmp", "usr"].filter { entries.contains($0) },
                       "unexpected files in the image: \(entries)")

        func inImage(_ arguments: String) throws -> CommandResult {
            try CommandRunner().run(["unshare", "--mount", "--fork", "sh", "-c",
                                     "mount -t proc proc \(root)/proc && chroot \(root) /usr/local/bin/nftproxy \(arguments)"],
                                    timeout: .seconds(60))
        }
        let version = try inImage("--version")
        XCTAssertEqual(version.status, 0, version.stderr)
        XCTAssertEqual(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       try CommandRunner().runChecked([nftproxy, "--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let dumped = try inImage("dump -f /tmp/echo-server.yaml --cluster-cidr 198.19.0.0/16")
        XCTAssertEqual(dumped.status, 0, dumped.stderr)
        let onHost = try CommandRunner().runChecked([nftproxy, "dump", "-f", path("examples/echo-server.yaml"),
                                                     "--cluster-cidr", "198.19.0.0/16"])
        XCTAssertEqual(dumped.stdout, onHost.stdout)
        XCTAssertTrue(dumped.stdout.contains("198.18.0.10 . tcp . 80 comment \"default/echo-server http\" : goto service-lb-3"), dumped.stdout)
    }
}
