import Glibc

/// Adds, removes and announces virtual IPv4 addresses in the calling thread's network namespace.
///
/// Addresses are changed with rtnetlink (RTM_NEWADDR / RTM_DELADDR on a NETLINK_ROUTE socket, as
/// `ip addr` does, but without running a program), and announced with gratuitous ARP written on an
/// AF_PACKET socket. Every call opens and closes its own sockets, so a manager holds no state and
/// may be used from any thread; it acts in the network namespace of the thread that calls it.
/// Needs CAP_NET_ADMIN to change addresses and CAP_NET_RAW to probe and announce (root has both).
public struct VirtualIPManager: Sendable {
    public struct Options: Sendable, Equatable {
        /// Gratuitous ARP rounds sent after adding (each a request and a reply); 0 sends none.
        public var announcements: Int
        /// Seconds between two rounds.
        public var announcementInterval: Double
        /// Seconds to wait for an answer to the ARP probe sent before adding (RFC 5227); nil: no probe.
        public var probeTimeout: Double?

        public init(announcements: Int = 3, announcementInterval: Double = 0.2, probeTimeout: Double? = 0.2) {
            self.announcements = announcements
            self.announcementInterval = announcementInterval
            self.probeTimeout = probeTimeout
        }
    }

    public enum AddOutcome: Equatable, Sendable {
        case added
        /// The interface already had the address with this prefix: nothing changed (it was announced again).
        case alreadyPresent
    }

    public enum RemoveOutcome: Equatable, Sendable {
        case removed
        /// The interface did not have the address with this prefix: nothing changed.
        case wasAbsent
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    // MARK: - Queries

    /// The interface of that name, or `interfaceNotFound`.
    public func interface(named name: String) throws -> InterfaceInfo {
        let socket = try openRoute(operation: "looking up", interface: name, address: nil)
        return try lookUp(name, address: nil, on: socket)
    }

    /// The IPv4 addresses of the namespace, or of one interface.
    public func addresses(on interface: String? = nil) throws -> [AssignedAddress] {
        let socket = try openRoute(operation: "listing addresses", interface: interface ?? "any interface", address: nil)
        let index = try interface.map { try lookUp($0, address: nil, on: socket).index }
        return try netlink("listing addresses", interface ?? "any interface", "all", { try RouteNetlink.addresses(on: socket) })
            .filter { index == nil || $0.interfaceIndex == index }
    }

    /// Whether the interface carries exactly this address and prefix.
    public func isPresent(_ vip: VirtualAddress) throws -> Bool {
        let socket = try openRoute(operation: "checking", interface: vip.interface, address: vip.cidr)
        let link = try lookUp(vip.interface, address: vip.cidr, on: socket)
        return try netlink("checking", vip.interface, vip.cidr, { try RouteNetlink.addresses(on: socket) })
            .contains { $0.interfaceIndex == link.index && $0.address == vip.address && $0.prefixLength == vip.prefixLength }
    }

    // MARK: - Changes

    /// Adds the address on its interface, unless it is already there; then announces it with
    /// gratuitous ARP (`options.announcements` rounds), also when it was already there.
    ///
    /// Refuses, changing nothing, when the interface is missing or down, when this host has the
    /// address elsewhere or with another prefix, and (with `options.probeTimeout`) when another
    /// host answers an ARP probe for it. On links without ARP (loopback, tunnels) it only adds.
    @discardableResult
    public func add(_ vip: VirtualAddress) throws -> AddOutcome {
        let socket = try openRoute(operation: "adding", interface: vip.interface, address: vip.cidr)
        let link = try lookUp(vip.interface, address: vip.cidr, on: socket)
        let existing = try netlink("adding", vip.interface, vip.cidr, { try RouteNetlink.addresses(on: socket) })
            .filter { $0.address == vip.address }
        if let here = existing.first(where: { $0.interfaceIndex == link.index }) {
            guard here.prefixLength == vip.prefixLength else {
                throw VirtualIPError.addressWithOtherPrefix(address: vip.address.description, interface: vip.interface,
                                                            existingPrefixLength: here.prefixLength)
            }
            if link.isUp && link.usesARP { try sendAnnouncements(vip.address, link: link, arp: nil) }
            return .alreadyPresent
        }
        if let elsewhere = existing.first {
            throw VirtualIPError.addressOnOtherInterface(address: vip.address.description, interface: vip.interface,
                                                         existing: elsewhere.label)
        }
        guard link.isUp else { throw VirtualIPError.interfaceDown(vip.interface, address: vip.cidr) }

        var arp: ARPSocket?
        if link.usesARP && (options.probeTimeout != nil || options.announcements > 0) {
            arp = try openARP(link, address: vip.address, operation: "probing and announcing")
        }
        if let arp, let timeout = options.probeTimeout,
           let owner = try probe(vip.address, link: link, arp: arp, timeout: timeout) {
            throw VirtualIPError.addressInUse(address: vip.address.description, interface: vip.interface, owner: owner)
        }
        do {
            try RouteNetlink.change(adding: true, vip.address, prefixLength: vip.prefixLength, index: link.index, on: socket)
        } catch let failure as NetlinkFailure where failure.code == EEXIST {
            return .alreadyPresent  // added meanwhile by someone else, with this very prefix
        } catch {
            throw mapped(error, operation: "adding", interface: vip.interface, address: vip.cidr)
        }
        if link.usesARP { try sendAnnouncements(vip.address, link: link, arp: arp) }
        return .added
    }

    /// Removes the address from its interface if it is there with this prefix.
    @discardableResult
    public func remove(_ vip: VirtualAddress) throws -> RemoveOutcome {
        let socket = try openRoute(operation: "removing", interface: vip.interface, address: vip.cidr)
        let link = try lookUp(vip.interface, address: vip.cidr, on: socket)
        do {
            try RouteNetlink.change(adding: false, vip.address, prefixLength: vip.prefixLength, index: link.index, on: socket)
            return .removed
        } catch let failure as NetlinkFailure where failure.code == EADDRNOTAVAIL {
            return .wasAbsent
        } catch {
            throw mapped(error, operation: "removing", interface: vip.interface, address: vip.cidr)
        }
    }

    // MARK: - ARP

    /// Sends `options.announcements` rounds of gratuitous ARP (a broadcast request and a broadcast
    /// reply each, `options.announcementInterval` apart) for `address` from the interface's MAC, so
    /// that neighbours point their cache entry at this host at once. Returns the frames sent.
    @discardableResult
    public func announce(_ address: IPv4Address, on interface: String) throws -> Int {
        let link = try self.interface(named: interface, for: address.description)
        guard link.usesARP else {
            throw VirtualIPError.arpUnsupported(interface: interface, address: address.description,
                                                reason: "the link does not use ARP (loopback, tunnel or NOARP)")
        }
        guard link.isUp else { throw VirtualIPError.interfaceDown(interface, address: address.description) }
        return try sendAnnouncements(address, link: link, arp: nil)
    }

    /// Broadcasts an ARP probe for `address` (sender 0.0.0.0, RFC 5227) and returns the MAC of
    /// the first other host that answers within `timeout` seconds, nil when nobody does.
    public func probe(_ address: IPv4Address, on interface: String, timeout: Double) throws -> MACAddress? {
        let link = try self.interface(named: interface, for: address.description)
        guard link.usesARP else {
            throw VirtualIPError.arpUnsupported(interface: interface, address: address.description,
                                                reason: "the link does not use ARP (loopback, tunnel or NOARP)")
        }
        guard link.isUp else { throw VirtualIPError.interfaceDown(interface, address: address.description) }
        let arp = try openARP(link, address: address, operation: "probing")
        return try probe(address, link: link, arp: arp, timeout: timeout)
    }

    private func probe(_ address: IPv4Address, link: InterfaceInfo, arp: ARPSocket, timeout: Double) throws -> MACAddress? {
        guard let mac = link.macAddress else { return nil }
        let deadline = monotonicNow() + timeout
        // Two probes, the second halfway, in case the first frame is lost.
        var probesLeft = 2
        var nextProbe = monotonicNow()
        while true {
            let now = monotonicNow()
            if probesLeft > 0 && now >= nextProbe {
                try packet("probing", link, address) { try arp.send(.probe(address, from: mac)) }
                probesLeft -= 1
                nextProbe = now + timeout / 2
            }
            let waitUntil = probesLeft > 0 ? min(nextProbe, deadline) : deadline
            guard now < deadline else { return nil }
            let answer = try packet("probing", link, address) { try arp.receive(timeout: waitUntil - now) }
            if let answer, answer.senderIP == address, answer.senderMAC != mac { return answer.senderMAC }
        }
    }

    @discardableResult
    private func sendAnnouncements(_ address: IPv4Address, link: InterfaceInfo, arp: ARPSocket?) throws -> Int {
        guard options.announcements > 0, let mac = link.macAddress else { return 0 }
        let socket = try arp ?? openARP(link, address: address, operation: "announcing")
        var sent = 0
        for round in 0..<options.announcements {
            if round > 0 { sleepSeconds(options.announcementInterval) }
            try packet("announcing", link, address) {
                try socket.send(.gratuitousRequest(address, from: mac))
                try socket.send(.gratuitousReply(address, from: mac))
            }
            sent += 2
        }
        return sent
    }

    // MARK: - Plumbing

    private func interface(named name: String, for address: String) throws -> InterfaceInfo {
        let socket = try openRoute(operation: "looking up", interface: name, address: address)
        return try lookUp(name, address: address, on: socket)
    }

    private func openRoute(operation: String, interface: String, address: String?) throws -> RouteNetlinkSocket {
        do {
            return try RouteNetlinkSocket()
        } catch {
            throw mapped(error, operation: "\(operation) (opening a netlink socket)", interface: interface, address: address ?? "-")
        }
    }

    private func lookUp(_ name: String, address: String?, on socket: RouteNetlinkSocket) throws -> InterfaceInfo {
        guard VirtualAddress.isValidInterfaceName(name) else { throw VirtualIPError.invalidInterfaceName(name) }
        let link = try netlink("looking up", name, address ?? "-", { try RouteNetlink.link(named: name, on: socket) })
        guard let link else { throw VirtualIPError.interfaceNotFound(name, address: address) }
        return link
    }

    private func openARP(_ link: InterfaceInfo, address: IPv4Address, operation: String) throws -> ARPSocket {
        try packet(operation, link, address) { try ARPSocket(interfaceIndex: link.index) }
    }

    private func netlink<T>(_ operation: String, _ interface: String, _ address: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw mapped(error, operation: operation, interface: interface, address: address) }
    }

    private func packet<T>(_ operation: String, _ link: InterfaceInfo, _ address: IPv4Address, _ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw mapped(error, operation: operation, interface: link.name, address: address.description) }
    }

    private func mapped(_ error: Error, operation: String, interface: String, address: String) -> Error {
        switch error {
        case let failure as NetlinkFailure:
            switch failure.code {
            case EPERM, EACCES:
                return VirtualIPError.permissionDenied(operation: operation, interface: interface, address: address, capability: "CAP_NET_ADMIN")
            case ENODEV:
                return VirtualIPError.interfaceNotFound(interface, address: address)
            default:
                return VirtualIPError.netlink(operation: operation, interface: interface, address: address,
                                              errno: failure.code, kernelMessage: failure.message)
            }
        case let failure as PacketFailure:
            switch failure.code {
            case EPERM, EACCES:
                return VirtualIPError.permissionDenied(operation: "\(operation) (ARP)", interface: interface, address: address, capability: "CAP_NET_RAW")
            case ENETDOWN:
                return VirtualIPError.interfaceDown(interface, address: address)
            case ENODEV, ENXIO:
                return VirtualIPError.interfaceNotFound(interface, address: address)
            default:
                return VirtualIPError.system(operation: "\(operation): \(failure.call)", interface: interface, address: address, errno: failure.code)
            }
        default:
            return error
        }
    }
}
