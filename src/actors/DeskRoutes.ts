/**
 * Which runner's sales desk takes a concert's orders from this process: the desk of the runner
 * that owns the concert's shard, or none when this process owns it (or runs alone).
 *
 * The cluster places shards on a hash ring of its healthy runners, read from its runners'
 * table; this reads the same table once a second and draws the same ring. A desk is an entity
 * like any other, so the cluster puts it on a runner; each runner's desk is one whose shard that
 * runner holds. Where the ring drawn here is behind the cluster's (a runner just joined or
 * died), orders reach a desk whose runner does not own their concert: it passes them on through
 * the cluster, and nothing but time is lost.
 */
import * as EntityId from "@effect/cluster/EntityId"
import { Runner } from "@effect/cluster/Runner"
import * as Sharding from "@effect/cluster/Sharding"
import { Duration, Effect, HashRing, Schedule } from "effect"
import { ConcertEntity } from "../domain/ConcertEntity.js"
import { SalesDesk } from "../domain/SalesDesk.js"
import { MainDatabase } from "../sql/Organisers.js"
import { shardingSettings, shardLockExpiration } from "./Cluster.js"

/** A runner's address as the cluster keys it. */
const keyOf = (address: { readonly host: string; readonly port: number }) => `${address.host}:${address.port}`

export class DeskRoutes extends Effect.Service<DeskRoutes>()("DeskRoutes", {
  scoped: Effect.gen(function*() {
    const { host, mode, port, shardsPerGroup } = yield* shardingSettings
    if (mode === "single") return { deskOf: (_concertId: string): string | undefined => undefined } as const
    const sharding = yield* Sharding.Sharding
    const self = mode === "runner" ? keyOf({ host, port }) : undefined
    const { client: sql } = yield* MainDatabase
    const expiration = Math.ceil(Duration.toSeconds(shardLockExpiration))

    const shardOf = (entityId: string, group: string) => sharding.getShardId(EntityId.make(entityId), group).id
    const concertGroup = ConcertEntity.getShardGroup(EntityId.make("concert"))
    // Concerts and desks are in one shard group, so one ring says where both run.
    const deskGroup = SalesDesk.getShardGroup(EntityId.make("desk"))
    if (deskGroup !== concertGroup) return { deskOf: (_concertId: string): string | undefined => undefined } as const
    // A desk id for every shard of the desks' group: `desk-N`, the first N that lands there.
    const deskOfShard = new Map<number, string>()
    for (let n = 0; deskOfShard.size < shardsPerGroup && n < 100 * shardsPerGroup; n++) {
      const shard = shardOf(`desk-${n}`, deskGroup)
      if (!deskOfShard.has(shard)) deskOfShard.set(shard, `desk-${n}`)
    }

    /** Each concert shard's runner, and each runner's desk, as the ring was last drawn. */
    let runnerOfShard: Array<string> = []
    let deskOfRunner = new Map<string, string>()

    const draw = (runners: ReadonlyArray<Runner>) => {
      const ring = HashRing.make<Runner["address"]>()
      for (const runner of runners) {
        if (runner.groups.includes(concertGroup)) HashRing.add(ring, runner.address, { weight: runner.weight })
      }
      const shards = HashRing.getShards(ring, shardsPerGroup)
      runnerOfShard = shards === undefined ? [] : shards.map(keyOf)
      const desks = new Map<string, string>()
      runnerOfShard.forEach((runner, i) => {
        const desk = deskOfShard.get(i + 1)
        if (!desks.has(runner) && desk !== undefined) desks.set(runner, desk)
      })
      deskOfRunner = desks
    }

    const look = sql<{ runner: string; healthy: boolean }>`
      SELECT runner, healthy FROM cluster_runners
      WHERE last_heartbeat > now() - make_interval(secs => ${expiration})`.pipe(
      Effect.map((rows) => draw(rows.filter((row) => row.healthy).map((row) => Runner.decodeSync(String(row.runner))))),
      // Until the next look, the ring stays as last drawn (whatever went wrong: a row that
      // would not decode must not stop the looks).
      Effect.catchAllCause(() => Effect.void)
    )
    yield* look
    yield* Effect.forkScoped(Effect.repeat(look, Schedule.spaced("1 second")))

    return {
      /** The desk for `concertId`'s orders; none when this process owns the concert, or no runner does. */
      deskOf: (concertId: string): string | undefined => {
        const runner = runnerOfShard[shardOf(concertId, concertGroup) - 1]
        return runner === undefined || runner === self ? undefined : deskOfRunner.get(runner)
      }
    } as const
  })
}) {}
