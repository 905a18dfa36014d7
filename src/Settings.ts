/**
 * Settings shared by several modules. A count that is zero or negative would hang or spin
 * something (a batch of nothing, a pool of no connections): the service refuses to start
 * instead, naming the setting.
 */
import { Config } from "effect"

/** How this process takes part in the cluster (see `src/actors/Cluster.ts`). */
export const clusterMode = Config.literal("single", "runner", "client")("CLUSTER_MODE").pipe(Config.withDefault("single"))
export type ClusterMode = Config.Config.Success<typeof clusterMode>

export const positiveInteger = (name: string, fallback: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.validate({ message: "must be a positive integer", validation: (n) => n >= 1 }),
    Config.withDefault(fallback)
  )
