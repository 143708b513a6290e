// Device numbers (dev_t) as glibc's makedev/major/minor encode them on Linux.
extension Posix {
    public static func makeDevice(major: UInt32, minor: UInt32) -> UInt64 {
        let major = UInt64(major), minor = UInt64(minor)
        return ((major & 0xFFFF_F000) << 32) | ((major & 0x0000_0FFF) << 8)
             | ((minor & 0xFFFF_FF00) << 12) | (minor & 0x0000_00FF)
    }

    public static func major(_ device: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: ((device >> 32) & 0xFFFF_F000) | ((device >> 8) & 0x0000_0FFF))
    }

    public static func minor(_ device: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: ((device >> 12) & 0xFFFF_FF00) | (device & 0x0000_00FF))
    }
}
