/**
 * EtcdVm: one member VM on Proxmox — its cloud-init snippet, the VM, its firewall and HA registration, and
 * the readiness check that gates everything installed on it — built from its `VmPlan`. Exposes the VM as
 * an `EtcdHost`, the shape the etcd layer consumes.
 */
import * as pulumi from "@pulumi/pulumi";
import * as proxmoxve from "@muhlba91/pulumi-proxmoxve";
import * as command from "@pulumi/command";
import * as tls from "@pulumi/tls";
import { EtcdHost, normalizeHostKey } from "../hosts";
import { renderUserData } from "./cloudInit";
import { wrapScript } from "../etcd/scripts";
import { VmPlan } from "./plan";

export const ETCD_VM_TYPE = "etcd-ha:index:EtcdVm";

/** Arguments of an EtcdVm. */
export interface EtcdVmArgs {
    /** The VM's plan from `planInfrastructure`: VM settings, snippet, firewall rules, readiness script. */
    plan: VmPlan;
    /** Id of the cloud image on this VM's node (`download.File` id, `<ds>:import/<file>.qcow2`). */
    imageId: pulumi.Input<string>;
    /** The member bridge's name as an output of the managed bridge (orders the VM after it). Default: the plan's name. */
    bridgeName?: pulumi.Input<string>;
    /** SSH user and private key (a secret) for the readiness check and the etcd layer. */
    ssh: { user: string; privateKey: pulumi.Input<string> };
    /** Register the VM as an HA resource (`ha.group`: its PVE 8 HA group). Omit for no HA. */
    ha?: { group?: pulumi.Input<string> };
    /** The Proxmox provider of the VM's node. */
    provider: pulumi.ProviderResource;
}

/** A member VM on Proxmox. */
export class EtcdVm extends pulumi.ComponentResource {
    /** The VM resource. */
    public readonly vm: proxmoxve.VmLegacy;
    /** Its HA resource, when HA is on. */
    public readonly haResource?: proxmoxve.Haresource;
    /** The VM's SSH host key (ed25519), installed by cloud-init; absent without a snippet. */
    public readonly hostKey?: tls.PrivateKey;
    /** The readiness check (SSH answers, cloud-init done). */
    public readonly ready: command.remote.Command;
    /** The VM as the etcd layer sees it; installs wait for `ready`. */
    public readonly host: EtcdHost;
    /** `vm:<vmid>`, the HA resource id. */
    public readonly haResourceId: pulumi.Output<string>;

    /**
     * @param name Logical name; children are `${name}-host-key`, `${name}-user-data`, `-vm`, `-firewall-options`, `-firewall-rules`, `-ha`, `-ready`.
     * @param args The plan and what only the engine knows.
     * @param opts Resource options.
     */
    constructor(name: string, args: EtcdVmArgs, opts?: pulumi.ComponentResourceOptions) {
        super(ETCD_VM_TYPE, name, {}, opts);
        const { plan, provider } = args;
        const m = plan.member;
        const child = { parent: this, provider };

        // The VM's SSH host key, made here so every remote step can pin it (a secret in the state; the public
        // half is the pin). Only the snippet can carry it: without one, the image's own keys are unknown.
        // A VM created before keys were generated keeps its own key, given in config (`members[].hostKey`).
        const snippet = plan.snippet;
        const adopted = m.hostKey;
        this.hostKey = snippet && adopted === undefined ? new tls.PrivateKey(`${name}-host-key`, { algorithm: "ED25519" }, { parent: this }) : undefined;
        const hostKeyLine: pulumi.Input<string> | undefined = adopted !== undefined ? normalizeHostKey(adopted) : this.hostKey?.publicKeyOpenssh.apply(normalizeHostKey);

        // The snippet is first-boot data: cloud-init reads it once. Same file name on replace, so delete first.
        const hostKey = this.hostKey;
        const userData = snippet
            ? new proxmoxve.FileLegacy(
                  `${name}-user-data`,
                  {
                      nodeName: snippet.nodeName,
                      datastoreId: snippet.datastoreId,
                      contentType: "snippets",
                      sourceRaw: {
                          fileName: snippet.fileName,
                          // Holds the host's private key: a secret.
                          data: hostKey
                              ? pulumi.secret(
                                    pulumi
                                        .all([hostKey.privateKeyOpenssh, hostKey.publicKeyOpenssh])
                                        .apply(([privateKey, publicKey]) => renderUserData({ ...snippet.userData, hostKey: { privateKey, publicKey } })),
                                )
                              : renderUserData(snippet.userData),
                      },
                      overwrite: true,
                  },
                  { ...child, deleteBeforeReplace: true },
              )
            : undefined;

        const v = plan.vm;
        this.vm = new proxmoxve.VmLegacy(
            `${name}-vm`,
            {
                ...v,
                disks: v.disks.map((d) => ({ ...d, importFrom: args.imageId })),
                networkDevices: v.networkDevices.map((n) => ({ ...n, bridge: args.bridgeName ?? n.bridge })),
                initialization: { ...v.initialization, ...(userData ? { userDataFileId: userData.id } : {}) },
            },
            {
                ...child,
                // Cloud-init inputs and the source image only seed a new VM. A re-uploaded snippet or a new image
                // (ForceNew in the provider) must never rebuild a running member; replace members with day-2 tools.
                // With HA, HA may move the VM: its node is not drift.
                ignoreChanges: ["initialization.userDataFileId", "disks[0].importFrom", ...(args.ha ? ["nodeName"] : [])],
            },
        );
        this.haResourceId = pulumi.interpolate`vm:${this.vm.vmId}`;

        const firewall: pulumi.Resource[] = [];
        if (plan.firewall) {
            firewall.push(new proxmoxve.firewall.OptionsLegacy(`${name}-firewall-options`, { ...plan.firewall.options, vmId: this.vm.vmId }, child));
            firewall.push(
                new proxmoxve.firewall.RulesLegacy(
                    `${name}-firewall-rules`,
                    { nodeName: plan.firewall.options.nodeName, vmId: this.vm.vmId, rules: plan.firewall.rules },
                    child,
                ),
            );
        }

        if (args.ha) {
            this.haResource = new proxmoxve.Haresource(
                `${name}-ha`,
                {
                    resourceId: this.haResourceId,
                    state: "started",
                    ...(args.ha.group !== undefined ? { group: args.ha.group } : {}),
                    maxRestart: 1,
                    maxRelocate: 1,
                    comment: `etcd-ha member ${m.name}`,
                },
                child,
            );
        }

        this.ready = new command.remote.Command(
            `${name}-ready`,
            {
                connection: {
                    host: m.address,
                    port: 22,
                    user: args.ssh.user,
                    privateKey: args.ssh.privateKey,
                    dialErrorLimit: plan.readiness.dialErrorLimit,
                    perDialTimeout: plan.readiness.perDialTimeout,
                    ...(hostKeyLine ? { hostKey: hostKeyLine } : {}),
                },
                create: wrapScript(plan.readiness.script, args.ssh.user),
                addPreviousOutputInEnv: false,
                logging: "stdoutAndStderr",
            },
            { parent: this, dependsOn: [this.vm, ...firewall] },
        );

        this.host = {
            name: m.name,
            fqdn: m.fqdn,
            address: m.address,
            hypervisor: m.hypervisor,
            vmId: m.vmId,
            connection: { host: m.address, port: 22, user: args.ssh.user, privateKey: args.ssh.privateKey, ...(hostKeyLine ? { hostKey: hostKeyLine } : {}) },
            dependsOn: [this.ready],
        };
        this.registerOutputs({ vmId: this.vm.vmId, haResourceId: this.haResourceId, ready: this.ready.stdout });
    }
}
