import Foundation
import XCTest
@testable import KubeClient

final class KubeconfigTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "kubeconfig-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func write(_ name: String, _ text: String) -> String {
        let path = directory + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    private func config(cluster: String, user: String = "    token: abc", extra: String = "") -> String {
        """
        apiVersion: v1
        kind: Config
        current-context: main
        clusters:
        - name: other
          cluster:
            server: https://other.example:6443
        - name: prod
          cluster:
        \(cluster)
        users:
        - name: admin
          user:
        \(user)
        contexts:
        - name: main
          context:
            cluster: prod
            user: admin
        - name: second
          context:
            cluster: other
            user: admin
        \(extra)
        """
    }

    private func assertError(_ text: String, field: String?, contains problem: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Kubeconfig.parse(text, source: "test.yaml", baseDirectory: directory), file: file, line: line) { error in
            guard let error = error as? ConfigurationError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(error.source, "test.yaml", file: file, line: line)
            XCTAssertEqual(error.field, field, "\(error)", file: file, line: line)
            XCTAssertTrue(error.problem.contains(problem), "\(error)", file: file, line: line)
        }
    }

    func testTokenAndCertificateAuthorityData() throws {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        let text = config(cluster: "    server: https://10.0.0.1:6443/\n    certificate-authority-data: \(Data(ca.utf8).base64EncodedString())")
        let connection = try Kubeconfig.parse(text, source: "test.yaml", baseDirectory: directory)
        XCTAssertEqual(connection.server, "https://10.0.0.1:6443")
        XCTAssertEqual(connection.certificateAuthorityPEM, Array(ca.utf8))
        XCTAssertEqual(connection.credentials.token, "abc")
        XCTAssertNil(connection.credentials.tokenFile)
        XCTAssertFalse(connection.insecureSkipTLSVerify)
        XCTAssertEqual(connection.warnings, [])
    }

    func testFilesAreResolvedAgainstTheKubeconfigDirectory() throws {
        _ = write("ca.crt", "CA")
        _ = write("client.crt", "CERT")
        _ = write("client.key", "KEY")
        _ = write("token", "secret\n")
        let text = config(cluster: "    server: https://k8s:443\n    certificate-authority: ca.crt",
                          user: "    tokenFile: token\n    client-certificate: client.crt\n    client-key: \(directory)/client.key")
        let path = write("config", text)
        let connection = try Kubeconfig.load(path: path)
        XCTAssertEqual(connection.certificateAuthorityPEM, Array("CA".utf8))
        XCTAssertEqual(connection.credentials.tokenFile, directory + "/token")
        XCTAssertEqual(connection.credentials.clientCertificatePEM, Array("CERT".utf8))
        XCTAssertEqual(connection.credentials.clientKeyPEM, Array("KEY".utf8))
        XCTAssertNil(connection.credentials.token)
    }

    func testClientCertificateData() throws {
        let text = config(cluster: "    server: https://k8s",
                          user: "    client-certificate-data: \(Data("CERT".utf8).base64EncodedString())\n"
                              + "    client-key-data: \(Data("KEY".utf8).base64EncodedString())")
        let connection = try Kubeconfig.parse(text, source: "test.yaml", baseDirectory: directory)
        XCTAssertEqual(connection.credentials.clientCertificatePEM, Array("CERT".utf8))
        XCTAssertEqual(connection.credentials.clientKeyPEM, Array("KEY".utf8))
    }

    func testInsecureSkipTLSVerifyIsHonouredWithAWarning() throws {
        let connection = try Kubeconfig.parse(config(cluster: "    server: https://k8s\n    insecure-skip-tls-verify: true"),
                                              source: "test.yaml", baseDirectory: directory)
        XCTAssertTrue(connection.insecureSkipTLSVerify)
        XCTAssertEqual(connection.warnings.count, 1)
        XCTAssertTrue(connection.warnings[0].contains("insecure-skip-tls-verify"), connection.warnings[0])
    }

    func testNamedContextWinsOverCurrentContext() throws {
        let connection = try Kubeconfig.parse(config(cluster: "    server: https://k8s"), source: "test.yaml",
                                              baseDirectory: directory, context: "second")
        XCTAssertEqual(connection.server, "https://other.example:6443")
    }

    func testErrorsNameTheField() {
        assertError(config(cluster: "    certificate-authority: ca.crt"), field: "cluster.server", contains: "missing")
        assertError(config(cluster: "    server: ftp://x"), field: "cluster.server", contains: "not an http(s) URL")
        assertError(config(cluster: "    server: https://k8s\n    certificate-authority-data: '%%%'"),
                    field: "cluster.certificate-authority-data", contains: "not base64")
        assertError(config(cluster: "    server: https://k8s\n    certificate-authority: missing.crt"),
                    field: "cluster.certificate-authority", contains: "cannot be read")
        assertError(config(cluster: "    server: https://k8s\n    insecure-skip-tls-verify: maybe"),
                    field: "cluster.insecure-skip-tls-verify", contains: "not true or false")
        assertError(config(cluster: "    server: https://k8s", user: "    exec:\n      command: aws"),
                    field: "user.exec", contains: "not supported")
        assertError(config(cluster: "    server: https://k8s", user: "    client-certificate-data: Q0VSVA=="),
                    field: "user.client-key", contains: "missing")
        assertError(config(cluster: "    server: https://k8s", user: "    tokenFile: /nonexistent/token"),
                    field: "user.tokenFile", contains: "cannot be read")
        assertError(config(cluster: "    server: https://k8s").replacingOccurrences(of: "current-context: main", with: ""),
                    field: "current-context", contains: "not set")
        assertError(config(cluster: "    server: https://k8s").replacingOccurrences(of: "current-context: main", with: "current-context: nope"),
                    field: "contexts", contains: "no entry named \"nope\"")
        assertError("- just\n- a list\n", field: nil, contains: "not a YAML mapping")
    }

    func testMasterOverridesOnlyTheServer() throws {
        let connection = try Kubeconfig.parse(config(cluster: "    server: https://k8s"), source: "test.yaml", baseDirectory: directory)
        let overridden = try connection.overridingServer("https://192.168.1.1:6443")
        XCTAssertEqual(overridden.server, "https://192.168.1.1:6443")
        XCTAssertEqual(overridden.credentials, connection.credentials)
        XCTAssertThrowsError(try connection.overridingServer("192.168.1.1")) { error in
            XCTAssertEqual((error as? ConfigurationError)?.source, "--master")
        }
    }
}

final class InClusterConfigTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "incluster-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testServiceAccountFiles() throws {
        _ = FileManager.default.createFile(atPath: directory + "/token", contents: Data("t1".utf8))
        _ = FileManager.default.createFile(atPath: directory + "/ca.crt", contents: Data("CA".utf8))
        let connection = try InClusterConfig.load(
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"], directory: directory)
        XCTAssertEqual(connection.server, "https://10.96.0.1:443")
        XCTAssertEqual(connection.credentials.tokenFile, directory + "/token")
        XCTAssertEqual(connection.certificateAuthorityPEM, Array("CA".utf8))
        let v6 = try InClusterConfig.load(
            environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"], directory: directory)
        XCTAssertEqual(v6.server, "https://[fd00::1]:6443")
    }

    func testMissingPiecesAreNamed() {
        func field(_ environment: [String: String]) -> String? {
            do throws(ConfigurationError) {
                _ = try InClusterConfig.load(environment: environment, directory: directory)
                return nil
            } catch {
                return error.field
            }
        }
        XCTAssertEqual(field([:]), "KUBERNETES_SERVICE_HOST")
        XCTAssertEqual(field(["KUBERNETES_SERVICE_HOST": "10.0.0.1"]), "KUBERNETES_SERVICE_PORT")
        XCTAssertEqual(field(["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "http"]), "KUBERNETES_SERVICE_PORT")
        XCTAssertEqual(field(["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"]), directory + "/token")
        _ = FileManager.default.createFile(atPath: directory + "/token", contents: Data("t1".utf8))
        XCTAssertEqual(field(["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"]), directory + "/ca.crt")
    }

    func testTokenFileIsReadAgainAfterRotation() throws {
        let path = directory + "/token"
        _ = FileManager.default.createFile(atPath: path, contents: Data("first\n".utf8))
        let token = BearerToken(Credentials(tokenFile: path))
        XCTAssertEqual(try token.current(), "first")
        _ = FileManager.default.createFile(atPath: path, contents: Data("second".utf8))
        XCTAssertEqual(try token.current(), "second")
        try FileManager.default.removeItem(atPath: path)
        XCTAssertEqual(try token.current(), "second", "a momentarily missing file keeps the last token")
        XCTAssertEqual(try BearerToken(Credentials(token: "fixed", tokenFile: path)).current(), "fixed")
        XCTAssertThrowsError(try BearerToken(Credentials(tokenFile: path)).current())
    }
}
