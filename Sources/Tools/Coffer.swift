import ArgumentParser
import Glibc
import Store

@main
struct Coffer: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "coffer",
        abstract: "Encrypted, deduplicating backups you can mount.",
        discussion: """
            Environment: COFFER_REPO (repository), COFFER_PASSWORD_FILE / COFFER_PASSWORD (passphrase), \
            COFFER_NEW_PASSWORD (init, key add/passwd/import-recovery), COFFER_CACHE_DIR (local catalog).

            \(Exit.help)
            """,
        version: version,
        subcommands: [Init.self, Backup.self, Snapshots.self, Ls.self, Restore.self, Check.self,
                      Mount.self, KeyCommand.self, CatalogCommand.self, Unlock.self])

    static func main() {
        ProcessHardening.disableCoreDumps()   // key material never lands in a core file
        // The long-running mount daemon trades allocation speed for a tight RSS bound; restore
        // limits its writer threads to two malloc arenas; backup keeps glibc's defaults.
        switch CommandLine.arguments.dropFirst().first {
        case "mount": MemoryTuning.apply()
        case "restore": MemoryTuning.applyForRestore()
        default: break
        }
        Self.main(nil)
    }
}
