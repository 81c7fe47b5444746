/** The one way components refuse bad arguments: every problem at once, in one InputPropertiesError. */
import * as pulumi from "@pulumi/pulumi";

/** One problem with a component argument: its property path and what is wrong. */
export interface ArgProblem {
    path: string;
    reason: string;
}

/** Throws `<Component> <name>: <what>` carrying every problem (declared `never`, so callers narrow). */
export function invalidArgs(component: string, name: string, problems: readonly ArgProblem[], what = "invalid arguments"): never {
    throw new pulumi.InputPropertiesError({
        message: `${component} ${name}: ${what}`,
        errors: problems.map((p) => ({ propertyPath: p.path, reason: p.reason })),
    });
}
