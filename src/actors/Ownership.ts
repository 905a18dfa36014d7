/**
 * Which concerts this process owns: those whose shard it holds. A concert's background work
 * (its seating renders, its ticket prints) runs at its owner alone, so with several runners each
 * plan is drawn once, by the runner that also writes the concert's seats.
 */
import * as EntityId from "@effect/cluster/EntityId"
import * as Sharding from "@effect/cluster/Sharding"
import { Effect, Layer } from "effect"
import { ConcertEntity } from "../domain/ConcertEntity.js"

export class Ownership extends Effect.Service<Ownership>()("Ownership", {
  effect: Effect.gen(function*() {
    const sharding = yield* Sharding.Sharding
    return {
      owns: (concertId: string): boolean =>
        sharding.hasShardId(sharding.getShardId(EntityId.make(concertId), ConcertEntity.getShardGroup(EntityId.make(concertId))))
    } as const
  })
}) {
  /** For a process that owns every concert without sharding (tests of the workers alone). */
  static readonly Everything = Layer.succeed(Ownership, new Ownership({ owns: () => true }))
}
