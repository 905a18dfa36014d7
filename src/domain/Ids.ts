import { Either, Schema } from "effect"

/**
 * A UUID as a client may write it, in either case, held in the lowercase form the service
 * writes: an id echoed back (a ticket's concert, its URL) reads as every other answer has it.
 */
export const Uuid = Schema.transform(
  // What a client sends, described as the UUID it must be (the API's documents show this side).
  Schema.String.annotations({
    jsonSchema: {
      type: "string",
      description: "a Universally Unique Identifier",
      format: "uuid",
      pattern: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    }
  }),
  Schema.UUID,
  { strict: true, decode: (text) => text.toLowerCase(), encode: (id) => id }
)

/** Concert ids are UUIDs the service generates. */
export const ConcertId = Uuid.pipe(Schema.brand("ConcertId"))
export type ConcertId = typeof ConcertId.Type

/** Ticket ids are UUIDs the service generates. */
export const TicketId = Uuid.pipe(Schema.brand("TicketId"))
export type TicketId = typeof TicketId.Type

/** User ids come from the users list, which a deployment may replace: any non-empty string. */
export const UserId = Schema.NonEmptyString.pipe(Schema.brand("UserId"))
export type UserId = typeof UserId.Type

/**
 * An id as a client sends it, in a path, a query or a body: one of ours (`Right`) when it has
 * the shape of one, else the text as given (`Left`). Text that cannot be an id is not a
 * malformed request; it names nothing, and is answered like any id that names nothing (404 in
 * a URL, 400 in a body) without asking the database.
 */
export const Named = <A extends string, I extends string>(id: Schema.Schema<A, I>) =>
  Schema.EitherFromUnion({ right: id, left: Schema.String })
export type Named<A> = Either.Either<A, string>

/** The text a client sent for an id, whether or not it could be one. */
export const sent = <A extends string>(named: Named<A>): string => Either.merge(named)
