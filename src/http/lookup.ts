import { Effect, Either, Option } from "effect"
import { type ConcertNotFound, UserNotFound } from "../domain/Errors.js"
import type { ConcertId, Named, UserId } from "../domain/Ids.js"

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

/**
 * The filters of a list (`?user_id=&concert_id=`): each, when given, must name an existing
 * user or concert, else 404 as for any unknown one.
 */
export const listFilter = (
  users: { readonly has: (id: string) => boolean },
  concerts: { readonly require: (named: Named<ConcertId>) => Effect.Effect<ConcertId, ConcertNotFound> },
  params: { readonly user_id?: string; readonly concert_id?: Named<ConcertId> }
): Effect.Effect<{ readonly userId?: UserId; readonly concertId?: ConcertId }, UserNotFound | ConcertNotFound> =>
  Effect.gen(function*() {
    const { concert_id, user_id } = params
    if (user_id !== undefined && !users.has(user_id)) return yield* UserNotFound.of(user_id)
    const concertId = concert_id === undefined ? undefined : yield* concerts.require(concert_id)
    return {
      ...(user_id === undefined ? {} : { userId: user_id as UserId }),
      ...(concertId === undefined ? {} : { concertId })
    }
  })
