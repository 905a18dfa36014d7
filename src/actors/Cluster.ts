/**
 * Where concert entities run. `CLUSTER_MODE`:
 * - `single` (default): this process owns every shard; shard locks and runner registration
 *   live in PostgreSQL, so a second copy on the same database cannot silently run the same
 *   concerts; no network listener.
 * - `runner`: one of several runners on a shared PostgreSQL, reachable by the others at
 *   `RUNNER_HOST:RUNNER_PORT`; shards are spread over the healthy runners.
 * - `client`: serves HTTP only, sending every concert message to the runners.
 */
import { RunnerAddress, RunnerHealth, Runners, Sharding, ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "@effect/cluster"
import { NodeClusterSocket } from "@effect/platform-node"
import { Config, Effect, Layer, Option } from "effect"
import { positiveInteger } from "../Settings.js"

const sharding = Config.all({
  mode: Config.literal("single", "runner", "client")("CLUSTER_MODE").pipe(Config.withDefault("single")),
  host: Config.string("RUNNER_HOST").pipe(Config.withDefault("localhost")),
  port: Config.port("RUNNER_PORT").pipe(Config.withDefault(34431)),
  shardsPerGroup: positiveInteger("SHARDS_PER_GROUP", 300)
})

export const ClusterLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const { host, mode, port, shardsPerGroup } = yield* sharding
    if (mode === "single") {
      return Sharding.layer.pipe(
        Layer.provideMerge(Runners.layerNoop),
        Layer.provideMerge(SqlMessageStorage.layer),
        Layer.provide([Layer.orDie(SqlRunnerStorage.layer), RunnerHealth.layerNoop]),
        Layer.provide(ShardingConfig.layer({
          runnerAddress: Option.some(RunnerAddress.make(host, port)),
          shardsPerGroup
        }))
      )
    }
    // Several runners: notice a dead one in seconds, not the default minute.
    const shardingConfig = {
      runnerAddress: mode === "client" ? Option.none() : Option.some(RunnerAddress.make(host, port)),
      shardsPerGroup,
      runnerHealthCheckInterval: "5 seconds",
      refreshAssignmentsInterval: "1 second",
      shardLockRefreshInterval: "2 seconds",
      shardLockExpiration: "6 seconds"
    } as const
    return mode === "client"
      ? NodeClusterSocket.layer({ storage: "sql", clientOnly: true, shardingConfig })
      : NodeClusterSocket.layer({ storage: "sql", shardingConfig })
  })
)
