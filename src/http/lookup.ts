import { Effect, Either, Option } from "effect"
import type { Named } from "../domain/Ids.js"

/**
 * Looks up a resource a client named: `notFound` when absent, and without asking the database
 * when the text cannot be one of our ids (`999999999`).
 */
export const findOrNotFound = <Id extends string, A, E>(
  named: Named<Id>,
  find: (id: Id) => Effect.Effect<Option.Option<A>>,
  notFound: (sent: string) => E
): Effect.Effect<A, E> =>
  Either.match(named, {
    onLeft: (text) => Effect.fail(notFound(text)),
    onRight: (id) =>
      Effect.flatMap(find(id), Option.match({ onNone: () => Effect.fail(notFound(id)), onSome: Effect.succeed }))
  })
