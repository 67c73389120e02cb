import Glibc

/// Why a virtual IP operation failed. Every message names the interface and the address concerned.
public enum VirtualIPError: Error, Equatable, CustomStringConvertible {
    /// The text is not an IPv4 `ADDRESS/PREFIX`.
    case invalidAddress(String, reason: String)
    case invalidInterfaceName(String)
    /// No interface of that name in this network namespace.
    case interfaceNotFound(String, address: String?)
    /// The interface exists but is administratively down: an address there would serve nobody.
    case interfaceDown(String, address: String)
    /// The address is on another interface of this host.
    case addressOnOtherInterface(address: String, interface: String, existing: String)
    /// The address is on the interface, but with another prefix length.
    case addressWithOtherPrefix(address: String, interface: String, existingPrefixLength: Int)
    /// Another host answered the ARP probe for the address: adding it would make a duplicate.
    case addressInUse(address: String, interface: String, owner: MACAddress)
    /// The link has no ARP (loopback, tunnel, NOARP): nothing to announce.
    case arpUnsupported(interface: String, address: String, reason: String)
    /// The kernel refused for lack of privilege (CAP_NET_ADMIN for addresses, CAP_NET_RAW for ARP).
    case permissionDenied(operation: String, interface: String, address: String, capability: String)
    /// The kernel refused a netlink request.
    case netlink(operation: String, interface: String, address: String, errno: Int32, kernelMessage: String?)
    /// A system call failed.
    case system(operation: String, interface: String, address: String, errno: Int32)

    public var description: String {
        switch self {
        case .invalidAddress(let text, let reason):
            return "invalid virtual IP \"\(text)\": \(reason)"
        case .invalidInterfaceName(let name):
            return "invalid interface name \"\(name)\": 1 to 15 characters, no '/', ':' or space"
        case .interfaceNotFound(let interface, let address):
            let subject = address.map { "cannot handle \($0): " } ?? ""
            return "\(subject)no interface \"\(interface)\" in this network namespace (see 'ip link')"
        case .interfaceDown(let interface, let address):
            return "cannot add \(address) on \(interface): the interface is down (ip link set \(interface) up)"
        case .addressOnOtherInterface(let address, let interface, let existing):
            return "cannot add \(address) on \(interface): this host already has it on \(existing)"
        case .addressWithOtherPrefix(let address, let interface, let existingPrefixLength):
            return "cannot add \(address) on \(interface): the interface already has it with prefix /\(existingPrefixLength); remove that one first"
        case .addressInUse(let address, let interface, let owner):
            return "cannot add \(address) on \(interface): another host (\(owner)) answered an ARP probe for it; "
                + "a duplicate address would split the clients between two hosts"
        case .arpUnsupported(let interface, let address, let reason):
            return "cannot announce \(address) on \(interface): \(reason)"
        case .permissionDenied(let operation, let interface, let address, let capability):
            return "\(operation) \(address) on \(interface): permission denied (needs root or \(capability))"
        case .netlink(let operation, let interface, let address, let code, let kernelMessage):
            let detail = kernelMessage.map { ": \($0)" } ?? ""
            return "\(operation) \(address) on \(interface) failed: \(errorText(code))\(detail)"
        case .system(let operation, let interface, let address, let code):
            return "\(operation) for \(address) on \(interface) failed: \(errorText(code))"
        }
    }
}

func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
