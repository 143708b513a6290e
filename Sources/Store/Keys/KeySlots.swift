import Crypto

extension KeyFile {
    /// Kinds this version knows to unwrap the master secret (i.e. can read the repository).
    /// Unknown kinds count as not read-capable, so an older coffer never lets the last slot it
    /// understands be removed because of a slot it cannot judge.
    public static let readCapableKinds: Set<String> = ["passphrase", "openpgp"]
    /// An `openpgp` slot counts only when it is well-formed (a message and at least one recipient).
    public var isReadCapable: Bool {
        guard KeyFile.readCapableKinds.contains(kind) else { return false }
        if kind == "openpgp" {
            return (wrappedKey?.hasPrefix("-----BEGIN PGP MESSAGE-----") ?? false) && !(recipients ?? []).isEmpty
        }
        return true
    }
}

/// One file in `keys/`, parsed if it could be.
public struct KeySlotEntry: Sendable {
    /// The object name: 64 hex digits (SHA-256 of the file).
    public let name: String
    /// nil when the file is not a valid key file.
    public let slot: KeyFile?
    public var shortID: String { String(name.prefix(8)) }

    /// Whether this slot can open `repositoryID` for reading.
    public func isReadCapable(for repositoryID: String) -> Bool {
        guard let slot else { return false }
        return slot.repository == repositoryID && slot.isReadCapable
    }
}

extension Repository {
    /// Every file in `keys/`, sorted by name; unreadable ones with `slot == nil`.
    public static func keySlots(_ backend: ReadableBackend) throws -> [KeySlotEntry] {
        do {
            return try backend.list(.keys).map { info in
                KeySlotEntry(name: info.name.id,
                             slot: try? KeyFile.decode(try backend.get(info.name), name: info.name.description))
            }
        } catch let e as BackendError {
            throw StoreError(.io, e.description)
        }
    }

    public func keySlots() throws -> [KeySlotEntry] { try Repository.keySlots(backend) }

    /// The slot whose name starts with `prefix` (case-insensitive); refuses unknown and ambiguous prefixes.
    public func findKeySlot(_ prefix: String) throws -> KeySlotEntry {
        let p = prefix.lowercased()
        guard !p.isEmpty, p.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw StoreError(.invalidArgument, "\"\(prefix)\" is not a key slot id (hex digits, as shown by 'coffer key list')")
        }
        let all = try keySlots()
        let matches = all.filter { $0.name.hasPrefix(p) }
        guard !matches.isEmpty else {
            throw StoreError(.invalidArgument, "no key slot matches \"\(prefix)\" (\(all.count) slot\(all.count == 1 ? "" : "s"): \(all.map(\.shortID).joined(separator: ", ")))")
        }
        guard matches.count == 1 else {
            throw StoreError(.ambiguous, "\"\(prefix)\" matches \(matches.count) key slots: \(matches.map { String($0.name.prefix(max(12, p.count + 4))) }.joined(separator: ", ")); give more digits")
        }
        return matches[0]
    }

    /// Adds a passphrase slot wrapping this repository's master secret (nothing is re-encrypted).
    /// Returns the new slot's name.
    @discardableResult
    public func addPassphraseSlot(_ passphrase: [UInt8], kdf: KDFParameters, label: String?) throws -> String {
        let keys = try self.keys
        let slot = try KeyFile.passphrase(passphrase, master: keys.master, repositoryID: config.idBytes, kdf: kdf, label: label,
                                          generation: keys.generation)
        return try Repository.addKeySlot(slot, to: backend)
    }

    /// Adds an OpenPGP slot: the master secret encrypted to `recipients` (user ids, e-mail
    /// addresses, key ids or fingerprints found in the gpg keyring). Returns the new slot's name.
    @discardableResult
    public func addOpenPGPSlot(recipients: [String], label: String?) throws -> String {
        let keys = try self.keys
        let slot = try KeyFile.openPGP(recipients: recipients, master: keys.master, repositoryID: config.idBytes, label: label,
                                       generation: keys.generation)
        return try Repository.addKeySlot(slot, to: backend)
    }

    /// Deletes key slot `name`. Refuses when it is the last read-capable slot of this repository.
    public func removeKeySlot(_ name: String) throws {
        let all = try keySlots()
        guard let target = all.first(where: { $0.name == name }) else {
            throw StoreError(.invalidArgument, "no key slot \(name.prefix(8))")
        }
        if target.slot?.kind == "generation" {
            throw StoreError(.invalidArgument, "\(target.shortID) is a key generation record: it holds the keys of older data and is never removed")
        }
        if target.isReadCapable(for: config.id),
           !all.contains(where: { $0.name != name && $0.isReadCapable(for: config.id) }) {
            throw StoreError(.invalidArgument, "refusing to remove key slot \(target.shortID): it is the last slot that can open the repository (add another one first with 'coffer key add')")
        }
        do { try backend.delete(try ObjectName(.keys, name)) } catch let e as BackendError {
            throw StoreError(.io, e.description)
        }
    }

    /// Replaces passphrase slot `name` with a new slot for `passphrase` (same label; `kdf`, or the
    /// old slot's KDF and cost with a fresh salt): the new slot is written first, then the old one
    /// removed. Returns the new slot's name.
    public func changePassphrase(slot name: String, to passphrase: [UInt8], kdf: KDFParameters?) throws -> String {
        let all = try keySlots()
        guard let entry = all.first(where: { $0.name == name }) else {
            throw StoreError(.invalidArgument, "no key slot \(name.prefix(8))")
        }
        guard let old = entry.slot, old.kind == "passphrase", old.repository == config.id else {
            throw StoreError(.invalidArgument, "key slot \(entry.shortID) is not a passphrase slot of this repository")
        }
        var params = kdf ?? KDFParameters.argon2id(memoryBytes: KDFParameters.defaultMemory)
        if kdf == nil, let o = old.kdf, ["argon2id", "scrypt"].contains(o.name) { params = o.withFreshSalt() }
        let newName = try addPassphraseSlot(passphrase, kdf: params, label: old.label)
        do { try backend.delete(try ObjectName(.keys, name)) } catch let e as BackendError {
            throw StoreError(.io, "new key slot \(newName.prefix(8)) written, but removing the old slot \(entry.shortID) failed: \(e.description)")
        }
        return newName
    }

    /// Checks that `keys` decrypts real objects of the repository at `backend`: up to three
    /// snapshots, else up to three index files. Returns what was decrypted ("snapshot 1a2b3c4d"),
    /// or nil when the repository has no snapshot or index file yet. Throws when objects exist
    /// but none of them opens.
    public static func verifyKeys(_ keys: RepositoryKeys, backend: ReadableBackend) throws -> String? {
        let opener = Opener(keys: keys)
        var tried: [String] = []
        do {
            for (kind, context, what) in [(ObjectKind.snapshots, EnvelopeContext.snapshot, "snapshot"),
                                          (ObjectKind.index, EnvelopeContext.index, "index file")] {
                for info in try backend.list(kind).prefix(3) {
                    let bytes = try backend.get(info.name)
                    if (try? opener.open(bytes, context: context, what: info.name.description)) != nil {
                        return "\(what) \(info.name.id.prefix(8))"
                    }
                    tried.append("\(what) \(info.name.id.prefix(8))")
                }
            }
        } catch let e as BackendError {
            throw StoreError(.io, e.description)
        }
        guard tried.isEmpty else {
            throw StoreError(.corrupt, "the key does not decrypt \(tried.joined(separator: ", ")): it does not belong to the repository at \(backend.location)")
        }
        return nil
    }

    /// Recovery: adds a passphrase slot for `passphrase` wrapping `master`, with no slot needing to
    /// open first. The caller has checked the master secret (`verifyKeys`). Returns the new slot's name.
    public static func addRecoveredSlot(backend: AppendOnlyBackend, config: RepositoryConfig, master: SecretBytes,
                                        passphrase: [UInt8], kdf: KDFParameters, label: String?,
                                        generation: UInt32 = 0) throws -> String {
        let slot = try KeyFile.passphrase(passphrase, master: master, repositoryID: config.idBytes, kdf: kdf, label: label,
                                          generation: generation)
        return try addKeySlot(slot, to: backend)
    }

    /// The keys a recovered master secret opens: its generation is the one whose record it opens
    /// (0 when none does). Also returns the newest generation in the repository.
    public static func recoveredKeys(master: SecretBytes, backend: ReadableBackend,
                                     config: RepositoryConfig) throws -> (keys: RepositoryKeys, newest: UInt32) {
        let slots = try keySlots(backend)
        let records = slots.compactMap(\.slot).filter { $0.kind == "generation" && $0.repository == config.id }
        let own = records.first { $0.openGenerationRecord(master: master, repositoryID: config.idBytes) != nil }
        let generation = own?.keyGeneration ?? 0
        let u = try UnlockedKeys.walk(master: master, generation: generation, repositoryID: config.idBytes,
                                      slots: slots, location: backend.location)
        return (u.keys, max(generation, records.map(\.keyGeneration).max() ?? 0))
    }
}
