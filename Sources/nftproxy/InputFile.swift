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
        var bytes: [UInt8] = []
        var reachedEnd = false
        while !reachedEnd {
            guard bytes.count <= limit else {
                throw InputError(source: source, problem: "input larger than \(limit) bytes")
            }
            // The next chunk is read straight into a new array's uninitialized storage (no
            // zero-filling first); a regular file comes in one chunk of its size.
            var failure: Int32?
            let chunk = [UInt8](unsafeUninitializedCapacity: max(capacity, bytes.count)) { buffer, initialized in
                while initialized < buffer.count {
                    let got = Foundation.read(descriptor, buffer.baseAddress.map { $0 + initialized }, buffer.count - initialized)
                    if got < 0 {
                        if errno == EINTR { continue }
                        failure = errno
                        return
                    }
                    if got == 0 {
                        reachedEnd = true
                        return
                    }
                    initialized += got
                }
            }
            if let failure {
                throw InputError(source: source, problem: "cannot read the file: \(String(cString: strerror(failure)))")
            }
            if bytes.isEmpty { bytes = chunk } else { bytes += chunk }
        }
        guard bytes.count <= limit else { throw InputError(source: source, problem: "input larger than \(limit) bytes") }
        return bytes
    }
}
