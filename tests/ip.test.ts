import { allocateFromRange, cidrContains, isCidr4, isIPv4, isNetworkCidr4, offsetInCidr, parseRange } from "../components/net/ip";

describe("ip helpers", () => {
    it.each([
        ["10.103.0.101", true],
        ["10.103.0", false],
        ["10.103.0.256", false],
        ["10.103.0.1/24", false],
        ["fe80::1", false],
        ["", false],
    ])("isIPv4(%p) = %p", (s, ok) => expect(isIPv4(s)).toBe(ok));

    it.each([
        ["10.103.0.0/24", true, true],
        ["10.103.0.5/24", true, false],
        ["10.103.0.0/33", false, false],
        ["10.103.0.0", false, false],
        ["10.103.0.0/", false, false],
    ])("isCidr4(%p) = %p, network = %p", (s, cidr, net) => {
        expect(isCidr4(s)).toBe(cidr);
        expect(isNetworkCidr4(s)).toBe(net);
    });

    it("checks membership and offsets", () => {
        expect(cidrContains("10.103.0.0/24", "10.103.0.254")).toBe(true);
        expect(cidrContains("10.103.0.0/24", "10.103.1.1")).toBe(false);
        expect(offsetInCidr("10.103.0.0/24", "10.103.0.101")).toBe(101);
        expect(offsetInCidr("10.20.0.0/16", "10.20.1.2")).toBe(258);
    });

    it("parses ranges and CIDRs (usable addresses only)", () => {
        expect(parseRange("10.0.0.5-10.0.0.9")).toEqual({ start: "10.0.0.5", end: "10.0.0.9" });
        expect(parseRange("10.0.0.96/29")).toEqual({ start: "10.0.0.97", end: "10.0.0.102" });
        expect(parseRange("10.0.0.5..10.0.0.9")).toBeUndefined();
    });

    it("allocates in order, skipping excluded and reserved addresses", () => {
        expect(allocateFromRange({ start: "10.0.0.254", end: "10.0.1.3" }, 4, new Set(["10.0.1.1"]), "10.0.0.0/24")).toEqual([
            "10.0.0.254", // 10.0.0.255 is the broadcast address of 10.0.0.0/24
            "10.0.1.0",
            "10.0.1.2", // 10.0.1.1 excluded
            "10.0.1.3",
        ]);
        expect(allocateFromRange({ start: "10.0.0.0", end: "10.0.0.6" }, 4, new Set(["10.0.0.1"]), "10.0.0.0/24")).toEqual([
            "10.0.0.2",
            "10.0.0.3",
            "10.0.0.4",
            "10.0.0.5",
        ]);
    });
});
