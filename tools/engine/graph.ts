/** The resource graph as the plan reports it: names instead of URNs, and the longest dependency chain. */
import { RecordedResource } from "./mockHost";

/** A resource in the plan's tree. */
export interface PlanResource {
    /** Type token, e.g. `etcd-ha:index:EtcdCluster`. */
    type: string;
    /** Logical name. */
    name: string;
    /** Logical name of the parent (null for the stack itself). */
    parent: string | null;
    /** Logical names of the resources it depends on (explicit and implied by inputs), sorted. */
    dependsOn: string[];
}

function nameOfUrn(urn: string): string {
    return urn.split("::").slice(3).join("::");
}

/** Converts recorded registrations into plan resources, in registration order. */
export function toPlanResources(resources: readonly RecordedResource[]): PlanResource[] {
    return resources.map((r) => ({
        type: r.type,
        name: r.name,
        parent: r.parent ? nameOfUrn(r.parent) : null,
        dependsOn: r.dependencies.map(nameOfUrn).sort(),
    }));
}

/**
 * Length (in resources) of the longest chain of dependencies: a resource with no dependencies has depth 1,
 * one that depends on it 2, and so on. Parent/child links are not dependencies. This is the number of
 * sequential steps `pulumi up` needs when everything independent runs in parallel.
 */
export function longestChain(resources: readonly RecordedResource[]): number {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const memo = new Map<string, number>();
    const visiting = new Set<string>();
    const depth = (urn: string): number => {
        const known = memo.get(urn);
        if (known !== undefined) return known;
        if (visiting.has(urn)) throw new Error(`dependency cycle through ${urn}`);
        visiting.add(urn);
        const r = byUrn.get(urn);
        let d = 1;
        for (const dep of r?.dependencies ?? []) if (byUrn.has(dep)) d = Math.max(d, 1 + depth(dep));
        visiting.delete(urn);
        memo.set(urn, d);
        return d;
    };
    return resources.reduce((m, r) => Math.max(m, depth(r.urn)), 0);
}
