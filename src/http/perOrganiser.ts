import { Effect, FiberRef } from "effect"
import { CurrentOrganiser } from "../domain/Organiser.js"

/**
 * A semaphore of `permits` per organiser (the fiber's `CurrentOrganiser`): work held up in one
 * organiser's database (a lock, a slow server, all its connections busy) never holds a permit
 * another organiser needs. Semaphores are made on first use and kept (a few hundred bytes each).
 */
export const perOrganiser = (permits: number) => {
  const gates = new Map<number, Effect.Semaphore>()
  return <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(FiberRef.get(CurrentOrganiser), (organiser) => {
      let gate = gates.get(organiser)
      if (gate === undefined) {
        gate = Effect.unsafeMakeSemaphore(permits)
        gates.set(organiser, gate)
      }
      return gate.withPermits(1)(self)
    })
}
