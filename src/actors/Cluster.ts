/**
 * Where concert entities run. `CLUSTER_MODE`:
 * - `single` (default): this process owns every shard; shard locks and runner registration
 *   live in PostgreSQL, so a second copy on the same database cannot silently run the same
 *   concerts; no network listener.
 * - `runner`: one of several runners on a shared PostgreSQL, reachable by the others at
 *   `RUNNER_HOST:RUNNER_PORT`; shards are spread over the healthy runners.
 * - `client`: serves HTTP only, sending every concert message to the runners.
 */
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as ShardId from "@effect/cluster/ShardId"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import { Config, Duration, Effect, Layer, Option, Schedule } from "effect"
import { clusterMode, positiveInteger } from "../Settings.js"
import { DatabaseClaim } from "../sql/DatabaseClaim.js"
import { withSchemaLock } from "../sql/migrations.js"
import { MainDatabase } from "../sql/Organisers.js"
import { StartupFailure } from "../StartupFailure.js"

/** Where this process runs in the cluster: its mode, its runner address, the shards per group. */
export const shardingSettings = Config.all({
  mode: clusterMode,
  host: Config.string("RUNNER_HOST").pipe(Config.withDefault("localhost")),
  // Below Linux's ephemeral range (32768-60999): an outgoing connection can never hold it.
  port: Config.port("RUNNER_PORT").pipe(Config.withDefault(7431)),
  shardsPerGroup: positiveInteger("SHARDS_PER_GROUP", 300),
  // A message to an entity of this process is handed over as it is, not encoded and decoded
  // as if it crossed the network: that cost a quarter of a purchase. The tests turn it on,
  // where it catches a payload that could not cross to another runner.
  simulateRemoteSerialization: Config.boolean("CLUSTER_SIMULATE_SERIALIZATION").pipe(Config.withDefault(false))
})

/**
 * One line whenever this process gains or loses concerts' shards (start, a runner joining,
 * dying or stopping, shutdown), from a look at the shard table once a second.
 */
const ShardWatchLive = (shardsPerGroup: number) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const sharding = yield* Sharding.Sharding
      let held = new Set<number>()
      const look = Effect.gen(function*() {
        const now = new Set<number>()
        for (let i = 1; i <= shardsPerGroup; i++) {
          if (sharding.hasShardId(ShardId.make("default", i))) now.add(i)
        }
        const acquired = [...now].filter((i) => !held.has(i)).length
        const released = [...held].filter((i) => !now.has(i)).length
        held = now
        if (acquired > 0) {
          yield* Effect.logInfo("shards acquired").pipe(Effect.annotateLogs({ acquired, held: now.size, of: shardsPerGroup }))
        }
        if (released > 0) {
          yield* Effect.logInfo("shards released").pipe(Effect.annotateLogs({ released, held: now.size, of: shardsPerGroup }))
        }
      })
      yield* Effect.forkScoped(Effect.repeat(look, Schedule.spaced("1 second")))
    })
  )

/** How long a runner's shard locks, and its heartbeat, last without a refresh. */
export const shardLockExpiration = Duration.seconds(6)

/**
 * The cluster's tables, made before the cluster starts and by one process at a time. Its
 * storages make them as they start; runners started together on a new database would each
 * make them at once, and all but one fail. Built here once under the schema lock, then
 * dropped: the storages the cluster starts with find them made.
 */
const ClusterTablesLive = (config: Parameters<typeof ShardingConfig.layer>[0]) =>
  Layer.effectDiscard(
    Effect.flatMap(MainDatabase, ({ url }) =>
      withSchemaLock(
        url,
        Effect.scoped(Layer.build(
          Layer.merge(SqlMessageStorage.layer, SqlRunnerStorage.layer).pipe(Layer.provide(ShardingConfig.layer(config)))
        ))
      ))
  )

export const ClusterLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const { host, mode, port, shardsPerGroup, simulateRemoteSerialization } = yield* shardingSettings
    if (mode === "single") {
      const singleConfig = { runnerAddress: Option.some(RunnerAddress.make(host, port)), shardsPerGroup, simulateRemoteSerialization }
      return ShardWatchLive(shardsPerGroup).pipe(
        Layer.provideMerge(Sharding.layer),
        Layer.provideMerge(Runners.layerNoop),
        Layer.provideMerge(SqlMessageStorage.layer),
        Layer.provide([Layer.orDie(SqlRunnerStorage.layer), RunnerHealth.layerNoop]),
        Layer.provide(ShardingConfig.layer(singleConfig)),
        Layer.provide(ClusterTablesLive(singleConfig)),
        Layer.provide(DatabaseClaim("single"))
      )
    }
    // Several runners: notice a dead one in seconds, not the default minute. A dead runner
    // leaves the ring when a health check fails (every 2 s, on one runner; a ping is retried
    // 5 times 0.5 s apart) or when its heartbeat is `shardLockExpiration` old, whichever comes
    // first. Its locks go with its database connection. Checks every 5 s left sales stopped
    // 5.1–5.7 s after a kill -9, every 2 s 3.4–6.5 s, in the failover test side by side.
    const shardingConfig = {
      runnerAddress: mode === "client" ? Option.none() : Option.some(RunnerAddress.make(host, port)),
      shardsPerGroup,
      runnerHealthCheckInterval: "2 seconds",
      refreshAssignmentsInterval: "1 second",
      shardLockRefreshInterval: "2 seconds",
      shardLockExpiration,
      simulateRemoteSerialization
    } as const
    if (mode === "client") {
      return NodeClusterSocket.layer({ storage: "sql", clientOnly: true, shardingConfig }).pipe(
        Layer.provide(ClusterTablesLive(shardingConfig))
      )
    }
    return ShardWatchLive(shardsPerGroup).pipe(
      Layer.provideMerge(NodeClusterSocket.layer({ storage: "sql", shardingConfig })),
      Layer.catchAll((error) =>
        Layer.fail(
          error._tag === "SocketServerError"
            ? new StartupFailure({
              message: `the runner cannot listen on ${host}:${port} (${String(error.cause)}); ` +
                "free the port or choose another RUNNER_PORT"
            })
            : error
        )
      ),
      Layer.provide(ClusterTablesLive(shardingConfig)),
      Layer.provide(DatabaseClaim("runner"))
    )
  })
)
