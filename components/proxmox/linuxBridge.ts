/**
 * LinuxBridge: the member bridge on one Proxmox node (`proxmoxve.network.linux.Bridge`), validated first.
 * Creating, changing or deleting it reloads the node's network (ifupdown2); never point it at the
 * management bridge.
 */
import * as pulumi from "@pulumi/pulumi";
import { invalidArgs } from "../argsError";
import * as proxmoxve from "@muhlba91/pulumi-proxmoxve";
import { BRIDGE_NAME } from "../config/schema";
import { cidrContains, isCidr4, isIPv4, networkOf } from "../net/ip";

export const LINUX_BRIDGE_TYPE = "etcd-ha:index:LinuxBridge";

/** Arguments of a LinuxBridge. */
export interface LinuxBridgeArgs {
    /** Proxmox node the bridge lives on. */
    nodeName: string;
    /** Interface name, e.g. `vmbr10`: a letter, then letters, digits or `_`, at most 10 characters. */
    name: string;
    /** Host address on the bridge in CIDR form (`10.103.0.11/24`), when the node routes the member network. */
    address?: string;
    /** Gateway on this bridge (needs `address`, inside its network). */
    gateway?: string;
    /** Physical NICs, bonds or VLAN interfaces enslaved to it; without one the bridge is local to the node. */
    ports?: string[];
    /** VLAN-aware bridge. Default false. */
    vlanAware?: boolean;
    /** MTU (576–65520). */
    mtu?: number;
    /** Bring it up at boot. Default true. */
    autostart?: boolean;
    /** Comment shown in the Proxmox UI. */
    comment?: string;
}

/** Problems with LinuxBridge arguments (every one). */
export function validateLinuxBridgeArgs(a: LinuxBridgeArgs): { path: string; reason: string }[] {
    const out: { path: string; reason: string }[] = [];
    if (!a.nodeName) out.push({ path: "nodeName", reason: "is required: the Proxmox node name" });
    if (!BRIDGE_NAME.test(a.name)) out.push({ path: "name", reason: `"${a.name}" is not a bridge name: a letter, then letters, digits or '_', at most 10 characters (e.g. vmbr10)` });
    if (a.address !== undefined && !isCidr4(a.address)) out.push({ path: "address", reason: `"${a.address}" must be an IPv4 address with a prefix, e.g. 10.103.0.11/24` });
    if (a.gateway !== undefined) {
        if (!isIPv4(a.gateway)) out.push({ path: "gateway", reason: `"${a.gateway}" is not an IPv4 address` });
        else if (a.address === undefined) out.push({ path: "gateway", reason: "needs address as well" });
        else if (isCidr4(a.address) && !cidrContains(networkOf(a.address), a.gateway)) out.push({ path: "gateway", reason: `${a.gateway} is outside ${networkOf(a.address)}` });
    }
    if (a.mtu !== undefined && (!Number.isInteger(a.mtu) || a.mtu < 576 || a.mtu > 65520)) out.push({ path: "mtu", reason: "must be an integer from 576 to 65520" });
    (a.ports ?? []).forEach((p, i) => {
        if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/.test(p)) out.push({ path: `ports[${i}]`, reason: `"${p}" is not an interface name` });
    });
    return out;
}

/** A Linux bridge on one Proxmox node. */
export class LinuxBridge extends pulumi.ComponentResource {
    /** The bridge's interface name (depend on this to attach NICs after it exists). */
    public readonly bridgeName: pulumi.Output<string>;
    /** The provider resource. */
    public readonly bridge: proxmoxve.network.linux.Bridge;

    /**
     * @param name Logical name; the child is `${name}-iface`.
     * @param args The bridge.
     * @param opts Pass the explicit `provider` for the node (every child uses it).
     */
    constructor(name: string, args: LinuxBridgeArgs, opts?: pulumi.ComponentResourceOptions & { provider?: pulumi.ProviderResource }) {
        super(LINUX_BRIDGE_TYPE, name, {}, opts);
        const problems = validateLinuxBridgeArgs(args);
        if (problems.length > 0) invalidArgs("LinuxBridge", name, problems);
        this.bridge = new proxmoxve.network.linux.Bridge(
            `${name}-iface`,
            {
                nodeName: args.nodeName,
                name: args.name,
                address: args.address,
                gateway: args.gateway,
                ports: args.ports ?? [],
                vlanAware: args.vlanAware ?? false,
                mtu: args.mtu,
                autostart: args.autostart ?? true,
                comment: args.comment,
            },
            { parent: this, provider: opts?.provider },
        );
        this.bridgeName = this.bridge.name;
        this.registerOutputs({ bridgeName: this.bridgeName });
    }
}
