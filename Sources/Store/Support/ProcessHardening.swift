import Glibc

/// Process-wide settings that keep key material out of places it should never reach.
public enum ProcessHardening {
    /// Sets RLIMIT_CORE to 0 (soft and hard), so a crash never writes the process memory —
    /// unwrapped keys, passphrases — to a core file (systemd-coredump honours a zero limit too).
    /// Returns false if the kernel refused.
    @discardableResult
    public static func disableCoreDumps() -> Bool {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        return setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none) == 0
    }
}
