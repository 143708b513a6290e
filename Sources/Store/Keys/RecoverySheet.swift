import Crypto

/// The printable recovery sheet: the repository's 64-byte master secret on paper.
///
/// Layout (see docs/KEYS.md): a header (repository id, location, date), the secret as 8 numbered
/// lines of 4 groups of 4 hex digits (8 bytes a line), each line ending with a 2-letter checksum,
/// a whole-sheet check value, and instructions. Only the key lines and the check value are secret
/// or derived from the secret; nothing else on the sheet is.
///
/// - Line checksum: CRC-8 (polynomial x⁸+x²+x+1, initial value 0xff) over the line number byte
///   followed by the line's 8 bytes, written as two letters from `checkAlphabet` (high nibble
///   first). A CRC of degree 8 detects every error confined to 8 consecutive bits, so every
///   single mistyped hex digit and every swap of two neighbouring digits is caught on its line;
///   the line number in the CRC catches lines typed in the wrong order. Other errors (two swapped
///   groups, several typos) are caught with probability 255/256 on the line, and otherwise by:
/// - Check value: the first 4 bytes (8 hex digits) of
///   HMAC-SHA256(key: master, "coffer recovery check" ‖ 32 repository id bytes). It ties the
///   sheet to its repository id and reveals nothing usable about the secret.
///
/// The parser is tolerant: case, spaces, tabs, `-` inside groups and blank lines do not matter;
/// lines it does not recognize (instructions, notes) are ignored. Error messages name line
/// numbers, never characters of the key.
public enum RecoverySheet {
    public static let format = "coffer-recovery-1"
    public static let bytesPerLine = 8
    public static var lineCount: Int { RepositoryKeys.masterLength / bytesPerLine }
    /// 16 letters that are not hex digits and not easily confused (no i, l, o, u).
    public static let checkAlphabet = Array("ghjkmnpqrstvwxyz".utf8)

    /// CRC-8 (poly 0x07, init 0xff) of `number` ‖ `bytes`.
    static func crc8(_ number: Int, _ bytes: ArraySlice<UInt8>) -> UInt8 {
        var crc: UInt8 = 0xff
        for b in [UInt8(truncatingIfNeeded: number)] + Array(bytes) {
            crc ^= b
            for _ in 0..<8 { crc = crc & 0x80 != 0 ? (crc << 1) ^ 0x07 : crc << 1 }
        }
        return crc
    }

    /// The two checksum letters of key line `number` (1-based) holding `bytes`.
    public static func lineCheck(_ number: Int, _ bytes: ArraySlice<UInt8>) -> String {
        let c = crc8(number, bytes)
        return String(decoding: [checkAlphabet[Int(c >> 4)], checkAlphabet[Int(c & 0x0f)]], as: UTF8.self)
    }

    /// The whole-sheet check value (8 hex digits).
    public static func checkValue(master: SecretBytes, repositoryID: [UInt8]) -> String {
        let mac = HMACSHA256(key: master)
        return Hex.encode(mac.authenticationCode(Array("coffer recovery check".utf8) + repositoryID).prefix(4))
    }

    /// The key lines alone: "1: 3f2a 9c1b 77e0 d4a5  kq".
    public static func keyLines(master: SecretBytes) -> [String] {
        var m = master.copyBytes()
        defer { secureZero(&m) }
        var lines: [String] = []
        for n in 1...(m.count / bytesPerLine) {
            let bytes = m[(n - 1) * bytesPerLine ..< n * bytesPerLine]
            var hex = Array(Hex.encode(bytes).utf8)
            var groups: [String] = []
            for g in stride(from: 0, to: hex.count, by: 4) { groups.append(String(decoding: hex[g..<g + 4], as: UTF8.self)) }
            for i in hex.indices { hex[i] = 0 }
            lines.append("\(n): " + groups.joined(separator: " ") + "  " + lineCheck(n, bytes))
        }
        return lines
    }

    /// The complete printable sheet.
    public static func render(master: SecretBytes, repositoryID: String, location: String, printed: Timestamp,
                              hostname: String, generation: UInt32 = 0) -> String {
        let clean = { (s: String) in String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) }) }
        let idBytes = Hex.decode(repositoryID) ?? []
        var out: [String] = []
        out.append("COFFER RECOVERY SHEET                                    (\(format))")
        out.append("")
        out.append("Repository id: \(repositoryID)")
        out.append("Location:      \(clean(location))")
        out.append("Printed:       \(printed.display) UTC on \(clean(hostname))")
        if generation > 0 {
            out.append("Key generation: \(generation) (after 'coffer key rotate'; sheets of older generations read only older data)")
        }
        out.append("")
        out.append("This page is the master key of the repository above. With it and a copy of the")
        out.append("repository anyone can read every backup in it, without any passphrase. Keep it")
        out.append("offline: on paper, in a safe or a sealed envelope, away from the repository and")
        out.append("from the machines it backs up. Do not photograph it, e-mail it or store it in a")
        out.append("cloud drive. Changing or removing passphrases does not invalidate this page.")
        out.append("")
        out.append("Master key (64 bytes: 8 lines of 4 groups, each line ends with 2 check letters)")
        out.append("")
        for l in keyLines(master: master) { out.append("    " + l) }
        out.append("")
        out.append("Check: \(checkValue(master: master, repositoryID: idBytes))")
        out.append("")
        out.append("To regain access (every passphrase lost, or every key slot deleted):")
        out.append("  - Type this page into a file, for example sheet.txt. Only the repository id,")
        out.append("    the 8 numbered key lines and the check value matter; spacing and upper or")
        out.append("    lower case do not.")
        out.append("  - Run, with the repository location set as usual (--repo or COFFER_REPO):")
        out.append("        coffer key import-recovery sheet.txt")
        out.append("    (\"coffer key import-recovery -\" reads the page from standard input).")
        out.append("  - Choose a new passphrase when asked (or set COFFER_NEW_PASSWORD).")
        out.append("  The command checks every line, the check value and the key against the")
        out.append("  repository's data before it adds the new passphrase; a typo is reported")
        out.append("  with the number of its line and nothing is written.")
        return out.joined(separator: "\n") + "\n"
    }

    /// What a sheet holds, after every check that needs no repository passed.
    public struct Parsed: Sendable {
        public let repositoryID: String
        public let master: SecretBytes
        public let checkValue: String
    }

    static func fail(_ message: String) -> StoreError { StoreError(.invalidArgument, "recovery sheet: \(message)") }

    /// Parses and verifies a sheet: every key line's checksum, then the check value.
    public static func parse(_ text: String) throws -> Parsed {
        var repositoryID: String?
        var check: String?
        var lines: [Int: [UInt8]] = [:]
        defer { for k in lines.keys { secureZero(&lines[k]!) } }
        func squeeze(_ s: Substring) -> [UInt8] {
            Array(s.utf8).filter { $0 != 0x20 && $0 != 0x09 && $0 != UInt8(ascii: "-") && $0 != 0x0d }.map {
                (0x41...0x5a).contains($0) ? $0 + 0x20 : $0
            }
        }
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].lowercased().filter { $0 != " " && $0 != "\t" }
            let value = line[line.index(after: colon)...]
            if key == "repositoryid" || key == "repository" {
                repositoryID = String(decoding: squeeze(value), as: UTF8.self)
            } else if key == "check" {
                check = String(decoding: squeeze(value), as: UTF8.self)
            } else if !key.isEmpty, key.count <= 2, key.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int(key) {
                guard (1...lineCount).contains(n) else {
                    throw fail("there is a key line \(n), but the key has only \(lineCount) lines")
                }
                guard lines[n] == nil else { throw fail("key line \(n) appears twice") }
                var chars = squeeze(value)
                defer { secureZero(&chars) }
                guard chars.count == 2 * bytesPerLine + 2 else {
                    throw fail("line \(n) has \(chars.count) characters; expected \(2 * bytesPerLine) hex digits and 2 check letters")
                }
                guard let bytes = Hex.decode(String(decoding: chars[0..<2 * bytesPerLine], as: UTF8.self)) else {
                    throw fail("line \(n) has a character that is not a hex digit (0-9, a-f) in its groups")
                }
                let checkChars = Array(chars[(2 * bytesPerLine)...])
                guard checkChars.allSatisfy(checkAlphabet.contains) else {
                    throw fail("line \(n): its 2 check letters must be among \(String(decoding: checkAlphabet, as: UTF8.self))")
                }
                guard Array(lineCheck(n, bytes[...]).utf8) == checkChars else {
                    throw fail("line \(n) does not match its check letters: a character on line \(n) is mistyped")
                }
                lines[n] = bytes
            }
        }
        for n in 1...lineCount where lines[n] == nil {
            throw fail("key line \(n) is missing (a key line looks like \"\(n): 3f2a 9c1b 77e0 d4a5  kq\")")
        }
        guard let repositoryID, repositoryID.utf8.count == 64, let idBytes = Hex.decode(repositoryID) else {
            throw fail("no valid \"Repository id:\" line (64 hex digits)")
        }
        guard let check, check.utf8.count == 8, Hex.decode(check) != nil else {
            throw fail("no valid \"Check:\" line (8 hex digits)")
        }
        var all: [UInt8] = []
        for n in 1...lineCount { all += lines[n]! }
        let master = SecretBytes(all)
        secureZero(&all)
        guard checkValue(master: master, repositoryID: idBytes) == check else {
            throw fail("the check value does not match the key lines and repository id: the sheet was altered or mistyped")
        }
        return Parsed(repositoryID: repositoryID, master: master, checkValue: check)
    }
}
