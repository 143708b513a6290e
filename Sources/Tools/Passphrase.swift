import Foundation
import Store

/// Reading passphrases without echo and without putting them in argv.
enum Passphrase {
    /// First line of a file (trailing newline stripped).
    static func read(file: String) throws -> [UInt8] {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError(.invalidArgument, "cannot read passphrase file \(file): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw StoreError(.io, "read \(file): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            if out.contains(0x0a) || out.count > 1 << 16 { break }
        }
        for i in buf.indices { buf[i] = 0 }
        if let nl = out.firstIndex(of: 0x0a) { out.removeSubrange(nl...) }
        if out.last == 0x0d { out.removeLast() }
        return out
    }

    /// Prompts on /dev/tty with echo off; nil when there is no terminal.
    static func prompt(_ text: String) throws -> [UInt8]? {
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard isatty(fd) == 1 else { return nil }
        var old = termios()
        tcgetattr(fd, &old)
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(fd, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(fd, TCSAFLUSH, &old)
            _ = "\n".withCString { Glibc.write(fd, $0, 1) }
        }
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        var out: [UInt8] = []
        var c: UInt8 = 0
        while Glibc.read(fd, &c, 1) == 1 {
            if c == 0x0a || c == 0x0d { break }
            out.append(c)
        }
        return out
    }

    /// A new passphrase: $COFFER_NEW_PASSWORD, else the usual sources (file/env), else asked twice on a tty.
    static func new(_ options: RepositoryOptions) throws -> [UInt8] {
        let env = ProcessInfo.processInfo.environment
        if let p = env["COFFER_NEW_PASSWORD"], !p.isEmpty { return Array(p.utf8) }
        if let f = options.passwordFile ?? env["COFFER_PASSWORD_FILE"], !f.isEmpty { return try read(file: f) }
        if let p = env["COFFER_PASSWORD"] { return Array(p.utf8) }
        guard let a = try prompt("Enter new passphrase: ") else {
            throw StoreError(.invalidArgument, "no passphrase: set COFFER_PASSWORD_FILE, COFFER_PASSWORD or COFFER_NEW_PASSWORD, or run on a terminal")
        }
        guard let b = try prompt("Repeat passphrase: "), a == b else {
            throw StoreError(.invalidArgument, "the passphrases do not match")
        }
        return a
    }

    /// A passphrase for a new key slot while another passphrase (the current one) may be in use:
    /// only $COFFER_NEW_PASSWORD or a tty prompt (asked twice) count, never the current passphrase's
    /// sources. Refuses an empty passphrase.
    static func newSlot() throws -> [UInt8] {
        if let p = ProcessInfo.processInfo.environment["COFFER_NEW_PASSWORD"], !p.isEmpty { return Array(p.utf8) }
        guard var a = try prompt("Enter new passphrase: ") else {
            throw StoreError(.invalidArgument, "no new passphrase: set COFFER_NEW_PASSWORD or run on a terminal (the current passphrase still comes from --password-file, COFFER_PASSWORD_FILE or COFFER_PASSWORD)")
        }
        guard !a.isEmpty else { throw StoreError(.invalidArgument, "refusing an empty passphrase") }
        guard var b = try prompt("Repeat new passphrase: ") else {
            throw StoreError(.invalidArgument, "no terminal to repeat the new passphrase on")
        }
        defer { for i in b.indices { b[i] = 0 } }
        guard a == b else {
            for i in a.indices { a[i] = 0 }
            throw StoreError(.invalidArgument, "the passphrases do not match")
        }
        return a
    }
}
