import ArgumentParser
import Foundation
import Store

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage key slots (passphrases, OpenPGP recipients) and the recovery sheet.",
        discussion: """
            Every slot wraps the same random master key, so adding, removing or changing a slot never \
            re-encrypts data. A new passphrase comes from COFFER_NEW_PASSWORD or is asked twice on the \
            terminal; the current one from --password-file, COFFER_PASSWORD_FILE, COFFER_PASSWORD or a prompt. \
            See docs/KEYS.md.
            """,
        subcommands: [List.self, Add.self, Remove.self, Passwd.self, ExportKey.self, WriteOnly.self, Rotate.self, ExportRecovery.self, ImportRecovery.self])

    // MARK: - list

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the key slots; * marks the one your passphrase opened.",
            discussion: "\"Last used\" is when a slot last unlocked the repository on this machine (from the local catalog).")

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var output: OutputOptions

        struct SlotJSON: Encodable {
            let id: String
            let name: String
            let kind: String
            let created: String?
            let label: String?
            let hostname: String?
            let username: String?
            let last_used: String?
            let current: Bool
            let read_capable: Bool
            let other_repository: Bool
            let recipients: [String]?
            let writer: String?
            let generation: UInt32?
            /// Left behind by an interrupted `key rotate` (the next rotate deletes it).
            let outdated: Bool

            enum CodingKeys: String, CodingKey {
                case id, name, kind, created, label, hostname, username, last_used, current, read_capable, other_repository
                case recipients, writer, generation, outdated
            }
            /// Absent values are written as null, so every object has the same keys.
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(id, forKey: .id); try c.encode(name, forKey: .name); try c.encode(kind, forKey: .kind)
                try c.encode(created, forKey: .created); try c.encode(label, forKey: .label)
                try c.encode(hostname, forKey: .hostname); try c.encode(username, forKey: .username)
                try c.encode(last_used, forKey: .last_used); try c.encode(current, forKey: .current)
                try c.encode(read_capable, forKey: .read_capable); try c.encode(other_repository, forKey: .other_repository)
                try c.encode(recipients, forKey: .recipients)
                try c.encode(writer, forKey: .writer)
                try c.encode(generation, forKey: .generation); try c.encode(outdated, forKey: .outdated)
            }
        }

        func run() throws {
            try runReportingErrors {
                let repo = try repository.open()
                let usage = (try? repo.catalog.keyUsage()) ?? [:]
                let slots = try repo.keySlots()
                let outdated = Set(repo.outdatedSlots(slots, generation: try repo.keys.generation).map(\.name))
                let rows = slots.map { e -> SlotJSON in
                    SlotJSON(id: e.shortID, name: e.name, kind: e.slot?.kind ?? "unreadable", created: e.slot?.created,
                             label: e.slot?.label, hostname: e.slot?.hostname, username: e.slot?.username,
                             last_used: usage[e.name], current: e.name == repo.openedSlot,
                             read_capable: e.isReadCapable(for: repo.config.id),
                             other_repository: e.slot.map { $0.repository != repo.config.id } ?? false,
                             recipients: e.slot?.kind == "openpgp" ? (e.slot?.recipients ?? []) : nil,
                             writer: e.slot?.kind == "write-only" ? e.slot?.writer : nil,
                             generation: e.slot.map(\.keyGeneration), outdated: outdated.contains(e.name))
                }
                if output.json {
                    Console.print(JSON.encode(rows, pretty: true))
                    return Exit.ok
                }
                func time(_ s: String?) -> String { s.flatMap { Timestamp(rfc3339: $0)?.display } ?? (s ?? "-") }
                var table = [["", "ID", "Kind", "Created", "Label", "Created by", "Last used here"]]
                for r in rows {
                    let by = r.username.map { u in r.hostname.map { "\(u)@\($0)" } ?? u } ?? "-"
                    let kind = r.kind + (r.recipients.map { " → " + $0.joined(separator: ", ") } ?? "")
                        + (r.writer.map { " (writer \($0.prefix(8)))" } ?? "")
                        + ((r.generation ?? 0) > 0 || r.kind == "generation" ? " gen \(r.generation ?? 0)" : "")
                        + (r.outdated ? " (outdated: left by an interrupted rotate; the next 'key rotate' removes it)" : "")
                    table.append([r.current ? "*" : "", r.id, kind + (r.other_repository ? " (other repository)" : ""),
                                  time(r.created), r.label ?? "", by, r.last_used.map { time($0) } ?? "-"])
                }
                Console.print(Table.render(table))
                Console.print("\(rows.count) key slot\(rows.count == 1 ? "" : "s") (* = the slot that opened the repository)")
                return Exit.ok
            }
        }
    }

    // MARK: - add

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a passphrase slot (the new passphrase from COFFER_NEW_PASSWORD or asked twice), or an OpenPGP slot.",
            discussion: """
                With --gpg-recipient (repeatable) the master key is encrypted with gpgme to those recipients' \
                public keys (from the gpg keyring, GNUPGHOME); unlock it later with --gpg or COFFER_GPG=1, \
                and gpg-agent (or a smartcard) does the decrypting.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var output: OutputOptions

        @Option(help: "A label for the new slot (shown by 'key list').")
        var label: String?

        @Option(help: ArgumentHelp("Argon2id memory for the new slot (default 64MiB, t=3, p=1).", valueName: "size"))
        var kdfMemory: String?

        @Option(name: .customLong("gpg-recipient"),
                help: ArgumentHelp("Add an OpenPGP slot for this recipient (user id, e-mail, key id or fingerprint; repeatable).",
                                   valueName: "id"))
        var gpgRecipients: [String] = []

        func run() throws {
            try runReportingErrors {
                if !gpgRecipients.isEmpty {
                    guard kdfMemory == nil else {
                        throw ValidationError("--kdf-memory applies to passphrase slots, not to --gpg-recipient")
                    }
                    var (repo, current) = try repository.openKeepingPassphrase()
                    for i in current.indices { current[i] = 0 }
                    let name = try underSharedLock(repo) { try repo.addOpenPGPSlot(recipients: gpgRecipients, label: label) }
                    printSlot(name, verb: "added OpenPGP key slot", output: output)
                    return Exit.ok
                }
                let kdf = try kdfParameters(memory: kdfMemory)
                var (repo, current) = try repository.openKeepingPassphrase()
                defer { for i in current.indices { current[i] = 0 } }
                var pass = try Passphrase.newSlot()
                defer { for i in pass.indices { pass[i] = 0 } }
                guard pass != current else {
                    throw StoreError(.invalidArgument, "the new passphrase is the one you opened the repository with; choose another")
                }
                let name = try underSharedLock(repo) { try repo.addPassphraseSlot(pass, kdf: kdf, label: label) }
                printSlot(name, verb: "added key slot", output: output)
                return Exit.ok
            }
        }
    }

    // MARK: - remove

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a key slot; refuses to delete the last slot that can open the repository.")

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var output: OutputOptions

        @Argument(help: ArgumentHelp("The slot's id or a unique prefix of it (see 'coffer key list').", valueName: "slot-id"))
        var slot: String

        func run() throws {
            try runReportingErrors {
                let repo = try repository.open()
                let entry = try repo.findKeySlot(slot)
                try underSharedLock(repo) { try repo.removeKeySlot(entry.name) }
                if output.json {
                    Console.print(JSON.encode(["removed": entry.shortID, "name": entry.name]))
                } else if !output.quiet {
                    Console.print("removed key slot \(entry.shortID)")
                    if entry.name == repo.openedSlot {
                        let left = try repo.keySlots().filter { $0.isReadCapable(for: repo.config.id) }.count
                        Console.print("That was the slot your passphrase opened: the passphrase no longer opens the repository; "
                                      + "\(left) other slot\(left == 1 ? "" : "s") still do\(left == 1 ? "es" : "").")
                    }
                }
                return Exit.ok
            }
        }
    }

    // MARK: - passwd

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a slot's passphrase (default: the slot your passphrase opened).",
            discussion: """
                Writes a new slot with the new passphrase and the same label, then deletes the old slot, so the \
                slot id changes. Without --kdf-memory the new slot keeps the old slot's KDF and cost.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var output: OutputOptions

        @Argument(help: ArgumentHelp("The slot's id or a unique prefix of it.", valueName: "slot-id"))
        var slot: String?

        @Option(help: ArgumentHelp("Argon2id memory for the new slot (default: the old slot's KDF and cost).", valueName: "size"))
        var kdfMemory: String?

        func run() throws {
            try runReportingErrors {
                let kdf = try kdfMemory.map { try kdfParameters(memory: $0) }
                var (repo, current) = try repository.openKeepingPassphrase()
                defer { for i in current.indices { current[i] = 0 } }
                let target = try slot.map { try repo.findKeySlot($0).name } ?? repo.openedSlot
                guard let entry = try repo.keySlots().first(where: { $0.name == target }), entry.slot?.kind == "passphrase",
                      entry.slot?.repository == repo.config.id else {
                    throw StoreError(.invalidArgument, "key slot \(target.prefix(8)) is not a passphrase slot of this repository")
                }
                var pass = try Passphrase.newSlot()
                defer { for i in pass.indices { pass[i] = 0 } }
                if target == repo.openedSlot, pass == current {
                    throw StoreError(.invalidArgument, "the new passphrase is the same as the current one")
                }
                let name = try underSharedLock(repo) { try repo.changePassphrase(slot: target, to: pass, kdf: kdf) }
                if output.json {
                    Console.print(JSON.encode(["id": String(name.prefix(8)), "name": name, "replaced": String(target.prefix(8))]))
                } else if !output.quiet {
                    Console.print("changed passphrase: key slot \(target.prefix(8)) replaced by \(name.prefix(8))")
                }
                return Exit.ok
            }
        }
    }

    // MARK: - export-key

    struct ExportKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-key",
            abstract: "Write a key file that opens the repository without a passphrase (for unattended reading and writing).",
            discussion: """
                Use it with --key-file FILE or COFFER_KEY_FILE on a machine that must run unattended with full \
                access (restores, checks, a mount started at boot): no prompt, no passphrase file, no KDF \
                delay. It holds the master key, like the recovery sheet: whoever reads it reads every backup. \
                The file is created with mode 0600 (never overwriting one); the repository records it in keys/ \
                ('coffer key list'), 'coffer key remove' withdraws it, and 'coffer key rotate' outdates it. \
                For backup clients prefer 'coffer key write-only'.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var out: OutputOptions
        @OptionGroup var new: NewKeyFileOptions

        func run() throws {
            try runReportingErrors {
                try createKeyFile(new.file, repository: repository, out: out) { repo in
                    let (key, slot) = try repo.exportKeyFile(label: new.label)
                    return (slot, key.write, [:],
                            "key file \(slot.prefix(8)) written to \(new.file) (mode 0600): it reads everything, keep it like the recovery sheet")
                }
            }
        }
    }

    // MARK: - write-only

    struct WriteOnly: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "write-only",
            abstract: "Create a key file that can back up into the repository but never read from it.",
            discussion: """
                Give the file to a backup client and run 'coffer backup --key-file FILE' (or set COFFER_KEY_FILE) \
                there. What it writes is sealed to the repository's X25519 public key: it cannot decrypt any \
                snapshot, tree or chunk, not even its own. It still deduplicates against everything in the \
                repository and keeps its own catalog for fast incremental runs. Readers see its snapshots like \
                any other. The file is created with mode 0600 and never overwrites one; the repository records \
                the key in keys/ ('coffer key list'), and 'coffer key remove' withdraws it. See docs/KEYS.md.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var out: OutputOptions
        @OptionGroup var new: NewKeyFileOptions

        func run() throws {
            try runReportingErrors {
                try createKeyFile(new.file, repository: repository, out: out) { repo in
                    let (key, slot) = try repo.issueWriteOnlyKey(label: new.label)
                    return (slot, key.write, ["writer": key.writer],
                            "write-only key \(slot.prefix(8)) (writer \(key.writer.prefix(8))) written to \(new.file) (mode 0600)")
                }
            }
        }
    }

    // MARK: - rotate

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "New data keys for everything written from now on; optionally retire compromised slots or write-only keys.",
            discussion: """
                Makes a new random master secret (the next key generation). Old data stays readable: the \
                new generation's record in keys/ seals the previous master secret. The slot you unlock with \
                and every OpenPGP slot are re-made for the new generation. For every other passphrase slot it \
                asks that slot's passphrase on the terminal (empty: retire the slot); without a terminal, name \
                them with --retire (and add them again afterwards) or the rotation is refused. \
                --retire ID (repeatable) deletes a slot or a write-only key: snapshots written with it after \
                now are rejected by every reader. Retiring a passphrase or OpenPGP slot also retires every \
                write-only key (issue new ones). Afterwards print a new recovery sheet, and restart running \
                mounts. Takes an exclusive lock. See docs/KEYS.md.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var output: OutputOptions

        @Option(help: ArgumentHelp("A key slot or write-only key to retire (id prefix from 'key list'; repeatable).", valueName: "id"))
        var retire: [String] = []

        @Option(help: "Why (recorded with the new generation, shown by 'key list').")
        var reason: String?

        func run() throws {
            try runReportingErrors {
                var (repo, pass) = try repository.openKeepingPassphrase()
                defer { for i in pass.indices { pass[i] = 0 } }
                var names = try retire.map { try repo.findKeySlot($0).name }
                // On a terminal, ask for the other passphrase slots' passphrases (empty: retire the
                // slot); without one, rotate() refuses and names them.
                var others: [String: [UInt8]] = [:]
                defer { for k in others.keys { for i in others[k]!.indices { others[k]![i] = 0 } } }
                let slots = try repo.keySlots()
                let outdated = Set(repo.outdatedSlots(slots, generation: try repo.keys.generation).map(\.name))
                for e in slots where e.isReadCapable(for: repo.config.id) && e.slot?.kind == "passphrase"
                    && e.name != repo.openedSlot && !names.contains(e.name) && !outdated.contains(e.name) {
                    let label = e.slot?.label.map { " (\($0))" } ?? ""
                    guard let p = try Passphrase.prompt("Passphrase of key slot \(e.shortID)\(label) to keep it, or empty to retire it: ") else { break }
                    if p.isEmpty { names.append(e.name) } else { others[e.name] = p }
                }
                let lock = try RepositoryLock.acquire(repo, exclusive: true)
                defer { lock.release() }
                let r = try repo.rotate(retire: names, passphrase: repository.useOpenPGP ? nil : pass,
                                        otherPassphrases: others, label: reason)
                if output.json {
                    struct Out: Encodable {
                        let generation: UInt32
                        let new_slots: [String], retired_slots: [String], retired_write_only: [String], kept_write_only: [String]
                        let accepted_snapshots: Int
                    }
                    Console.print(JSON.encode(Out(generation: r.generation, new_slots: r.newSlots.shortIDList,
                                                  retired_slots: r.retiredSlots.shortIDList,
                                                  retired_write_only: r.retiredWriters.shortIDList,
                                                  kept_write_only: r.keptWriters.shortIDList,
                                                  accepted_snapshots: r.acceptedSnapshots)))
                } else if !output.quiet {
                    Console.print("rotated to key generation \(r.generation): \(r.acceptedSnapshots) existing snapshot\(r.acceptedSnapshots == 1 ? "" : "s") stay valid")
                    Console.print("new slots: \(r.newSlots.shortIDs)")
                    if !r.retiredSlots.isEmpty { Console.print("retired slots: \(r.retiredSlots.shortIDs)") }
                    if !r.retiredWriters.isEmpty {
                        Console.print("retired write-only keys: \(r.retiredWriters.shortIDs) (issue new ones with 'coffer key write-only')")
                    }
                    if !r.outdatedKeyFiles.isEmpty {
                        Console.print("key files withdrawn (they hold the old key): \(r.outdatedKeyFiles.shortIDs) (export new ones with 'coffer key export-key')")
                    }
                    if !r.keptWriters.isEmpty {
                        Console.print("write-only keys still valid: \(r.keptWriters.shortIDs)")
                    }
                    Console.print("Print a new recovery sheet now ('coffer key export-recovery'): the old one cannot read data written from now on.")
                }
                return Exit.ok
            }
        }
    }

    // MARK: - export-recovery

    struct ExportRecovery: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-recovery",
            abstract: "Print the recovery sheet: the master key on paper, for when every passphrase is lost.",
            discussion: """
                Redirect it to a printer or a file (or use --output, which creates the file with mode 0600); \
                it is not printed to a terminal without --yes, because it would stay in the scrollback. \
                Anyone holding the sheet and the repository can read every backup: keep it offline. \
                'coffer key import-recovery' turns it back into a passphrase slot.
                """)

        @OptionGroup var repository: RepositoryOptions

        @Option(name: .shortAndLong, help: ArgumentHelp("Write the sheet to a new file (mode 0600) instead of standard output.", valueName: "file"))
        var output: String?

        @Flag(help: "Print the sheet even when standard output is a terminal.")
        var yes = false

        func run() throws {
            try runReportingErrors {
                if output == nil, Console.stdoutIsTTY, !yes {
                    throw StoreError(.invalidArgument, "refusing to print the recovery sheet to a terminal (it would stay in the scrollback): redirect it (> sheet.txt, | lpr), use --output FILE, or pass --yes")
                }
                let repo = try repository.open()
                let sheet = RecoverySheet.render(master: try repo.keys.master, repositoryID: repo.config.id, location: repo.location,
                                                 printed: Timestamp.now(), hostname: SystemInfo.hostname,
                                                 generation: try repo.keys.generation)
                if let output {
                    let path = RawPath(output).normalizedAbsolute()
                    do {
                        let fh = try Store.FileHandle.create(path, permissions: 0o600)
                        defer { fh.close() }
                        try Array(sheet.utf8).withUnsafeBytes { try fh.write($0) }
                        try fh.sync()
                    } catch let e as PosixError {
                        throw StoreError(.io, "cannot write the recovery sheet: \(e)")
                    }
                    FileHandleOut.stderr.write("recovery sheet written to \(path) (mode 0600); print it, store it offline, then delete the file\n")
                } else {
                    FileHandleOut.stdout.write(sheet)
                }
                return Exit.ok
            }
        }
    }

    // MARK: - import-recovery

    struct ImportRecovery: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-recovery",
            abstract: "Add a passphrase slot from a recovery sheet; needs no passphrase and no working slot.",
            discussion: """
                Checks every key line's check letters, the repository id, the check value, and that the key \
                decrypts the repository's data, before it writes anything. The new passphrase comes from \
                COFFER_NEW_PASSWORD or is asked twice on the terminal.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var output: OutputOptions

        @Argument(help: ArgumentHelp("The sheet as typed in, or - for standard input.", valueName: "file"))
        var file: String

        @Option(help: "A label for the new slot.")
        var label: String = "recovery"

        @Option(help: ArgumentHelp("Argon2id memory for the new slot (default 64MiB, t=3, p=1).", valueName: "size"))
        var kdfMemory: String?

        func run() throws {
            try runReportingErrors {
                let kdf = try kdfParameters(memory: kdfMemory)
                let backend = try repository.backend()
                let config = try Repository.readConfig(backend)
                var text = try readSheet(file)
                defer { text.resetBytes(in: 0..<text.count) }
                let sheet = try RecoverySheet.parse(String(decoding: text, as: UTF8.self))
                guard sheet.repositoryID == config.id else {
                    throw StoreError(.invalidArgument, "this recovery sheet belongs to repository \(sheet.repositoryID.prefix(8)), but the repository at \(backend.location) is \(config.shortID)")
                }
                let (keys, newest) = try Repository.recoveredKeys(master: sheet.master, backend: backend, config: config)
                if keys.generation < newest {
                    Console.warn("this sheet holds key generation \(keys.generation), but the repository was rotated to generation \(newest): it reads only data written before that rotation, and its slot cannot back up; print a new sheet ('coffer key export-recovery') with a current key")
                }
                let checked: String?
                do { checked = try Repository.verifyKeys(keys, backend: backend) } catch let e as StoreError where e.code == .corrupt {
                    throw StoreError(.invalidArgument, "recovery sheet: \(e.message)")
                }
                if checked == nil {
                    Console.warn("the repository holds no snapshot or index file yet, so the key could only be checked against the sheet itself")
                }
                var pass = try Passphrase.newSlot()
                defer { for i in pass.indices { pass[i] = 0 } }
                let name = try Repository.addRecoveredSlot(backend: backend, config: config, master: sheet.master,
                                                           passphrase: pass, kdf: kdf, label: label, generation: keys.generation)
                printSlot(name, verb: "added key slot", output: output,
                          note: checked.map { "from the recovery sheet (the key decrypts \($0))" } ?? "from the recovery sheet")
                return Exit.ok
            }
        }

        func readSheet(_ file: String) throws -> Data {
            let handle: Foundation.FileHandle
            if file == "-" {
                handle = .standardInput
            } else {
                guard let h = Foundation.FileHandle(forReadingAtPath: file) else {
                    throw StoreError(.invalidArgument, "cannot read the recovery sheet \(file): \(String(cString: strerror(errno)))")
                }
                handle = h
            }
            defer { if file != "-" { try? handle.close() } }
            let data = (try? handle.read(upToCount: 1 << 20)) ?? nil
            guard let data, !data.isEmpty else {
                throw StoreError(.invalidArgument, "the recovery sheet \(file == "-" ? "on standard input" : file) is empty")
            }
            return data
        }
    }
}

extension Array where Element == String {
    /// Slot names as the 8-digit ids `key list` shows.
    fileprivate var shortIDList: [String] { map { String($0.prefix(8)) } }
    /// The same, comma-separated, for messages.
    fileprivate var shortIDs: String { shortIDList.joined(separator: ", ") }
}

/// Runs a slot change under a shared lock, so that a concurrent `key rotate` (which takes an
/// exclusive one) cannot miss it.
private func underSharedLock<T>(_ repo: Repository, _ body: () throws -> T) throws -> T {
    let lock = try RepositoryLock.acquire(repo, exclusive: false)
    defer { lock.release() }
    return try body()
}

/// The file `key export-key` and `key write-only` create, and its label.
struct NewKeyFileOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("The key file to create (mode 0600; must not exist).", valueName: "file"))
    var file: String

    @Option(help: "A label for the key (shown by 'key list'), e.g. the host or purpose it is for.")
    var label: String?
}

/// `key export-key` and `key write-only`: refuses an existing file, opens the repository, makes the
/// key and its record under a shared lock (a concurrent `key rotate` must not miss it), writes the
/// file (removing the record again if that fails) and prints the result.
private func createKeyFile(_ file: String, repository: RepositoryOptions, out: OutputOptions,
                           make: (Repository) throws -> (slot: String, write: (RawPath) throws -> Void,
                                                         json: [String: String], text: String)) throws -> Int32 {
    let path = RawPath(file).normalizedAbsolute()
    if (try? Posix.lstat(path)) != nil {
        throw StoreError(.invalidArgument, "\(path) already exists; refusing to overwrite it")
    }
    let repo = try repository.open()
    let made = try underSharedLock(repo) { try make(repo) }
    do { try made.write(path) } catch {
        try? repo.removeKeySlot(made.slot)
        throw error
    }
    if out.json {
        Console.print(JSON.encode(made.json.merging(["id": String(made.slot.prefix(8)), "name": made.slot,
                                                     "file": path.description]) { $1 }))
    } else if !out.quiet {
        Console.print(made.text)
    }
    return Exit.ok
}

/// "added key slot 1a2b3c4d" (or JSON) for commands that create a slot.
private func printSlot(_ name: String, verb: String, output: OutputOptions, note: String? = nil) {
    if output.json {
        Console.print(JSON.encode(["id": String(name.prefix(8)), "name": name]))
    } else if !output.quiet {
        Console.print("\(verb) \(name.prefix(8))" + (note.map { " \($0)" } ?? ""))
    }
}
