/**
 * The concerts this process knows exist. A concert entity is started by its first message and
 * stays in memory until idle; a message for a concert that does not exist would start one
 * too, so a flood of random ids would fill memory with entities that only say "not found".
 * Purchases and updates ask here first: a concert seen once is remembered (concerts are never
 * deleted), any other id costs one indexed look-up and leaves nothing behind. At most four such
 * look-ups run at once in each organiser's database: a flood of made-up ids waits its turn
 * instead of taking the database pool from buyers.
 */
import { Effect, Either, Option } from "effect"
import { ConcertNotFound } from "../domain/Errors.js"
import type { ConcertId, Named } from "../domain/Ids.js"
import { ConcertsRepo } from "../sql/ConcertsRepo.js"
import { perOrganiser } from "./perOrganiser.js"

export class KnownConcerts extends Effect.Service<KnownConcerts>()("KnownConcerts", {
  dependencies: [ConcertsRepo.Default],
  effect: Effect.gen(function*() {
    const repo = yield* ConcertsRepo
    const known = new Set<string>()
    const lookups = perOrganiser(4)
    const exists = (id: ConcertId): Effect.Effect<boolean> =>
      known.has(id)
        ? Effect.succeed(true)
        : Effect.map(lookups(repo.findById(id)), (found) => {
          if (Option.isNone(found)) return false
          known.add(id)
          return true
        })
    return {
      exists,
      /** Whether the concert is known here already, without asking the database. */
      known: (id: ConcertId): boolean => known.has(id),
      /** The concert a client named, or 404 as for any unknown concert. */
      require: (named: Named<ConcertId>): Effect.Effect<ConcertId, ConcertNotFound> =>
        Either.match(named, {
          onLeft: (text) => Effect.fail(ConcertNotFound.of(text)),
          onRight: (id) => Effect.flatMap(exists(id), (found) => found ? Effect.succeed(id) : Effect.fail(ConcertNotFound.of(id)))
        }),
      /** A concert this process just created. */
      add: (id: ConcertId): void => {
        known.add(id)
      }
    } as const
  })
}) {}
