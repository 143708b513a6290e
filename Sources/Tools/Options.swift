import ArgumentParser
import Foundation
import Store

/// Where the repository is and how to unlock it (shared by every command that opens one).
struct RepositoryOptions: ParsableArguments {
    @Option(name: [.customShort("r"), .long], help: "Repository location (default: $COFFER_REPO).")
    var repo: String?

    @Option(help: ArgumentHelp("File whose first line is the passphrase (default: $COFFER_PASSWORD_FILE; or $COFFER_PASSWORD; else a prompt on a tty).",
                               valueName: "file"))
    var passwordFile: String?

    @Option(help: ArgumentHelp("Directory for the local catalog (default: $COFFER_CACHE_DIR, else $XDG_CACHE_HOME/coffer or ~/.cache/coffer).",
                               valueName: "dir"))
    var cacheDir: String?

    @Flag(help: "Unlock through an OpenPGP key slot and gpg-agent instead of a passphrase (default: $COFFER_GPG=1).")
    var gpg = false

    @Option(help: ArgumentHelp("Use this key file instead of a passphrase (default: $COFFER_KEY_FILE): from 'coffer key export-key' (reads and writes, no passphrase or KDF) or 'coffer key write-only' (can only back up). It must not be readable by group or others.",
                               valueName: "file"))
    var keyFile: String?

    /// --key-file or $COFFER_KEY_FILE, when given.
    var keyFilePath: String? {
        guard let k = keyFile ?? environment["COFFER_KEY_FILE"], !k.isEmpty else { return nil }
        return k
    }

    /// --gpg or COFFER_GPG=1: open through OpenPGP slots; no passphrase source is consulted.
    var useOpenPGP: Bool { gpg || environment["COFFER_GPG"] == "1" }

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func location() throws -> RawPath {
        guard let r = repo ?? environment["COFFER_REPO"], !r.isEmpty else {
            throw ValidationError("no repository given: use --repo or set COFFER_REPO")
        }
        return RawPath(r).normalizedAbsolute()
    }

    func backend() throws -> LocalBackend {
        LocalBackend(path: try location())
    }

    func cacheDirectory() -> RawPath {
        if let d = cacheDir ?? environment["COFFER_CACHE_DIR"], !d.isEmpty { return RawPath(d).normalizedAbsolute() }
        if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { return RawPath(x).appending("coffer") }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/root"
        let cache = RawPath(home).appending(".cache")
        try? Posix.makeDirectory(cache, permissions: 0o700)
        return cache.appending("coffer")
    }

    /// The passphrase, from --password-file, $COFFER_PASSWORD_FILE, $COFFER_PASSWORD, or a tty prompt.
    func passphrase(prompt: String = "Enter passphrase for repository: ") throws -> [UInt8] {
        if let f = passwordFile ?? environment["COFFER_PASSWORD_FILE"], !f.isEmpty {
            return try Passphrase.read(file: f)
        }
        if let p = environment["COFFER_PASSWORD"] { return Array(p.utf8) }
        if let p = try Passphrase.prompt(prompt) { return p }
        throw StoreError(.invalidArgument, "no passphrase: set COFFER_PASSWORD_FILE or COFFER_PASSWORD, use --password-file, or run on a terminal")
    }

    /// The key file of --key-file / $COFFER_KEY_FILE, read (and permission-checked) once.
    func loadKeyFile() throws -> (path: String, key: AnyKeyFile)? {
        guard let path = keyFilePath else { return nil }
        return (path, try AnyKeyFile.load(RawPath(path).normalizedAbsolute()))
    }

    /// The catalog `openForWriting` will use, opened before unlocking (nil for a write-only key,
    /// whose catalog depends on the key): a backup reads ahead in it while the KDF runs.
    /// Throws "no repository" like `open` would, before any passphrase is asked for.
    func catalogBeforeUnlocking() throws -> Catalog? {
        if let (_, file) = try loadKeyFile(), case .writeOnly = file { return nil }
        return try Repository.openReaderCatalog(backend: try backend(), cacheDirectory: cacheDirectory())
    }

    /// Opens the repository for `backup`: with a write-only key file when one is given, else as
    /// `open`. `catalog`: from `catalogBeforeUnlocking`.
    func openForWriting(catalog: Catalog? = nil) throws -> Repository {
        let keyFile = try loadKeyFile()
        if let (path, file) = keyFile, case .writeOnly(let key) = file {
            let backend = try backend()
            let repo = try Repository.open(backend: backend, writeOnlyKey: key, keyPath: path, cacheDirectory: cacheDirectory())
            for w in repo.warnings { Console.warn(w) }
            return repo
        }
        var (repo, pass) = try open(keyFile: keyFile, cacheBytes: 32 << 20, catalog: catalog)
        for i in pass.indices { pass[i] = 0 }
        return repo
    }

    /// Refuses a write-only key file for commands that read.
    func refuseWriteOnly() throws {
        if let (path, file) = try loadKeyFile(), case .writeOnly(let key) = file { throw writeOnlyRefusal(path, key) }
    }

    private func writeOnlyRefusal(_ path: String, _ key: WriteOnlyKey) -> StoreError {
        let args = CommandLine.arguments.dropFirst()
        let command = args.first.map { ["key", "catalog"].contains($0) ? args.prefix(2).joined(separator: " ") : $0 } ?? ""
        return StoreError(.writeOnly, "\(path) is a write-only key (writer \(key.writer.prefix(8))): it can run 'coffer backup' but not 'coffer \(command)', which must decrypt; use a passphrase, --gpg or a recovery sheet")
    }

    /// Opens and unlocks the repository, syncing the local catalog.
    func open(cacheBytes: Int = 32 << 20) throws -> Repository {
        var (repo, pass) = try openKeepingPassphrase(cacheBytes: cacheBytes)
        for i in pass.indices { pass[i] = 0 }
        return repo
    }

    /// Like `open`, and also returns the passphrase that opened it (the caller zeroes it).
    func openKeepingPassphrase(cacheBytes: Int = 32 << 20) throws -> (Repository, [UInt8]) {
        try open(keyFile: try loadKeyFile(), cacheBytes: cacheBytes)
    }

    /// Unlocks with `keyFile` when given (refusing a write-only one), else through OpenPGP or a passphrase.
    private func open(keyFile: (path: String, key: AnyKeyFile)?, cacheBytes: Int,
                      catalog: Catalog? = nil) throws -> (Repository, [UInt8]) {
        let backend = try backend()
        _ = try Repository.readConfig(backend)        // "no repository" before asking for a passphrase
        if let (path, file) = keyFile {
            switch file {
            case .writeOnly(let key): throw writeOnlyRefusal(path, key)
            case .master(let key):
                let repo = try Repository.open(backend: backend, keyFile: key, keyPath: path, cacheDirectory: cacheDirectory(),
                                               cacheBytes: cacheBytes, catalog: catalog)
                for w in repo.warnings { Console.warn(w) }
                return (repo, [])
            }
        }
        if useOpenPGP {
            let repo = try Repository.openWithOpenPGP(backend: backend, cacheDirectory: cacheDirectory(), cacheBytes: cacheBytes,
                                                      catalog: catalog)
            for w in repo.warnings { Console.warn(w) }
            return (repo, [])
        }
        var pass = try passphrase()
        do {
            let repo = try Repository.open(backend: backend, passphrase: pass, cacheDirectory: cacheDirectory(), cacheBytes: cacheBytes,
                                           catalog: catalog)
            for w in repo.warnings { Console.warn(w) }
            return (repo, pass)
        } catch {
            for i in pass.indices { pass[i] = 0 }
            throw error
        }
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "Machine-readable JSON output.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors (and the result with --json).")
    var quiet = false

    /// A live progress line only when a person is watching.
    var showProgress: Bool { !json && !quiet && Console.stdoutIsTTY }
}

/// Argon2id parameters for a new passphrase slot from `--kdf-memory` (nil: the default cost).
func kdfParameters(memory: String?) throws -> KDFParameters {
    guard let m = memory else { return .argon2id(memoryBytes: KDFParameters.defaultMemory) }
    guard let v = parseSize(m), v >= 1 << 20, v <= 4 << 30 else {
        throw ValidationError("--kdf-memory: expected a size between 1MiB and 4GiB, like 64MiB")
    }
    return .argon2id(memoryBytes: v)
}

/// Parses sizes like "64MiB", "1G", "512k", "1048576".
func parseSize(_ s: String) -> Int? {
    let lower = s.lowercased().trimmingCharacters(in: .whitespaces)
    let units: [(String, Int)] = [("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("kb", 1 << 10), ("mb", 1 << 20),
                                  ("gb", 1 << 30), ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)]
    for (suffix, mult) in units where lower.hasSuffix(suffix) {
        guard let v = Double(lower.dropLast(suffix.count)), v >= 0 else { return nil }
        return Int(v * Double(mult))
    }
    return Int(lower)
}
