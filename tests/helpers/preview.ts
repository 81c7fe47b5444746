/**
 * Running the program as the first `pulumi preview` of a new stack: every resource is new, so the engine
 * knows only what the program gave it (its inputs and its URN); what a provider computes on create
 * (certificates, command stdout, ids) is unknown.
 */
import * as pulumi from "@pulumi/pulumi";
import { runProgram, RecordedResource } from "../../tools/engine/mockHost";

/** What the engine stores for an unknown value (the SDK's `runtime.unknownValue`). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/**
 * A preview's answer for a new resource: its inputs only, no id. In a preview the SDK takes a property the
 * answer leaves out as unknown (and inputs that were unknown stay so), as the engine's preview of a create.
 */
export async function previewNewResource(args: pulumi.runtime.MockResourceArgs): Promise<pulumi.runtime.MockResourceResult> {
    return { id: undefined, state: args.inputs as Record<string, unknown> };
}

/** True when a stored value is, or holds, an unknown. */
export function hasUnknown(v: unknown): boolean {
    if (v === UNKNOWN) return true;
    if (Array.isArray(v)) return v.some(hasUnknown);
    if (typeof v === "object" && v !== null) return Object.values(v).some(hasUnknown);
    return false;
}

/** The result of a preview run: the registrations and the stack outputs as the engine stores them. */
export interface PreviewResult {
    resources: RecordedResource[];
    /** Stack outputs as the engine receives them: unknowns as `UNKNOWN`, secrets still wrapped. */
    stored: Record<string, unknown>;
}

/** Runs a program (options as `runProgram` takes them) as a preview of a new stack. */
export async function runPreview(opts: Omit<Parameters<typeof runProgram>[0], "preview" | "newResource" | "onStackOutputs">): Promise<PreviewResult> {
    let stored: Record<string, unknown> | undefined;
    const { resources } = await runProgram({
        ...opts,
        preview: true,
        newResource: previewNewResource,
        onStackOutputs: (o) => {
            stored = o;
        },
    });
    if (!stored) throw new Error("the preview registered no stack outputs");
    return { resources, stored };
}
