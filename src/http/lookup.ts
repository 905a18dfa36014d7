import { Effect, Option } from "effect"
import { NotFound } from "../domain/Errors.js"
import { isUuid } from "../domain/Ids.js"

/**
 * Looks up a resource named by a raw path or query value: NotFound when absent, and also
 * without asking the database when the value cannot be one of our ids (`999999999`).
 */
export const findOrNotFound = <Id, A>(
  raw: string,
  toId: (raw: string) => Id,
  find: (id: Id) => Effect.Effect<Option.Option<A>>,
  what: string
): Effect.Effect<A, NotFound> => {
  const notFound = () => new NotFound({ message: `${what} ${raw} does not exist` })
  return isUuid(raw)
    ? Effect.flatMap(find(toId(raw)), Option.match({ onNone: () => Effect.fail(notFound()), onSome: Effect.succeed }))
    : Effect.fail(notFound())
}
