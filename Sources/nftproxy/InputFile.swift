import Foundation
import KubeObjects

/// Reads an input file (or stdin for `-`) into bytes, with no text copy, refusing inputs
/// larger than ``InputLimits/maxInputBytes``.
enum InputFile {
    static func read(_ path: String) throws(InputError) -> [UInt8] {
        let source = path == "-" ? "<stdin>" : path
        let descriptor = path == "-" ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw InputError(source: source, problem: "cannot read the file: \(String(cString: strerror(errno)))")
        }
        defer { if path != "-" { close(descriptor) } }
        var info = stat()
        var capacity = 1 << 16
        if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
            capacity = Int(info.st_size) + 1
        }
        let limit = InputLimits.maxInputBytes
        guard capacity <= limit + 1 else {
            throw InputError(source: source, problem: "input larger than \(limit) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: capacity)
        var count = 0
        while true {
            if count == bytes.count {
                guard bytes.count <= limit else {
                    throw InputError(source: source, problem: "input larger than \(limit) bytes")
                }
                bytes.append(contentsOf: repeatElement(0, count: bytes.count))
            }
            let got = bytes.withUnsafeMutableBytes { buffer in
                Foundation.read(descriptor, buffer.baseAddress.map { $0 + count }, buffer.count - count)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw InputError(source: source, problem: "cannot read the file: \(String(cString: strerror(errno)))")
            }
            if got == 0 { break }
            count += got
        }
        guard count <= limit else { throw InputError(source: source, problem: "input larger than \(limit) bytes") }
        bytes.removeSubrange(count...)
        return bytes
    }
}
