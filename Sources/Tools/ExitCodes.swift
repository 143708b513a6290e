import ArgumentParser
import Store
import Foundation

/// Stable exit codes (documented in `coffer --help` and the README).
enum Exit {
    static let ok: Int32 = 0
    static let failure: Int32 = 1          // any other fatal error
    static let partial: Int32 = 3          // backup: snapshot written, but some files could not be read
    static let noRepository: Int32 = 10    // no repository at the location
    static let locked: Int32 = 11          // the repository is locked by another process
    static let wrongPassword: Int32 = 12   // no key slot opens with the passphrase, or the key cannot read
    static let damaged: Int32 = 13         // check found damage / restore could not read some data
    static let interrupted: Int32 = 130

    static let help = """
        Exit codes: 0 success, 1 error, 3 backup incomplete (snapshot saved, some files unreadable), \
        10 no repository, 11 repository locked, 12 wrong passphrase or key cannot do that, 13 damage found, 64 usage error, 130 interrupted.
        """

    static func code(for error: StoreError) -> Int32 {
        switch error.code {
        case .repositoryNotFound: return noRepository
        case .locked: return locked
        case .wrongPassword, .writeOnly: return wrongPassword
        case .corrupt: return damaged
        case .interrupted: return interrupted
        default: return failure
        }
    }
}

/// Runs a command body, turning errors into one line on stderr and a meaningful exit code.
func runReportingErrors(_ body: () throws -> Int32) throws {
    let code: Int32
    do {
        code = try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as StoreError {
        Console.error(e.message)
        code = Exit.code(for: e)
    } catch let e as ValidationError {
        throw e
    } catch {
        Console.error("\(error)")
        code = Exit.failure
    }
    if code != Exit.ok { throw ExitCode(code) }
}

enum Console {
    static func error(_ message: String) {
        FileHandleOut.stderr.write("coffer: \(message)\n")
    }
    static func warn(_ message: String) {
        FileHandleOut.stderr.write("warning: \(message)\n")
    }
    static func print(_ s: String) {
        FileHandleOut.stdout.write(s + "\n")
    }
    static var stdoutIsTTY: Bool { isatty(1) == 1 }
}

/// Unbuffered writes to fd 1 / fd 2 (so progress and output interleave correctly).
struct FileHandleOut {
    let fd: Int32
    static let stdout = FileHandleOut(fd: 1)
    static let stderr = FileHandleOut(fd: 2)
    func write(_ s: String) {
        var bytes = Array(s.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { if errno == EINTR { continue }; return }
            off += n
        }
        bytes.removeAll()
    }
}
