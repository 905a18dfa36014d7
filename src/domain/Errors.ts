/**
 * The errors the API answers with, declared once. Each is a schema class that carries its HTTP
 * status; on the wire every one is `{"error": "<message>"}` (`Json`). Endpoints declare the ones
 * they can answer (`src/domain/Api.ts`), handlers fail with them, and HttpApi encodes them: the
 * OpenAPI document and the typed client say what each endpoint can answer because the same
 * declaration makes the response. What the framework raises itself (a body that is not JSON or
 * too large, an unknown route, a defect) is answered by `src/http/ErrorResponses.ts`.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"

const Message = { message: Schema.String }
const status = <A>(code: number) => HttpApiSchema.annotations<A>({ status: code })

/**
 * An id as a message shows it: what the client sent, cut at 100 characters. An answer must not
 * echo back a 60 KB "id".
 */
export const shown = (id: string): string => id.length > 100 ? `${id.slice(0, 100)}…` : id

// 400: the body names something that does not exist.

/** Sale settings that do not make a sale. */
export class BadSaleSettings extends Schema.TaggedError<BadSaleSettings>()("BadSaleSettings", Message, status(400)) {}

/** A purchase for a concert that does not exist. */
export class UnknownConcert extends Schema.TaggedError<UnknownConcert>()("UnknownConcert", Message, status(400)) {
  static of(id: string) {
    return new UnknownConcert({ message: `concert ${shown(id)} does not exist` })
  }
}

/** A purchase for a user who is not in the users list. */
export class UnknownUser extends Schema.TaggedError<UnknownUser>()("UnknownUser", Message, status(400)) {
  static of(id: string) {
    return new UnknownUser({ message: `user ${shown(id)} does not exist` })
  }
}

/** More seats asked of one reservation than this concert allows. */
export class QuantityOverLimit extends Schema.TaggedError<QuantityOverLimit>()("QuantityOverLimit", Message, status(400)) {
  static of(max: number) {
    return new QuantityOverLimit({ message: `quantity must be at most ${max} for this concert (max_per_reservation)` })
  }
  /** A quantity that is not a whole number of at least one, answered with the concert's limit. */
  static outside(max: number) {
    return new QuantityOverLimit({ message: `quantity must be a whole number from 1 to ${max} for this concert (max_per_reservation)` })
  }
}

// 401: a key that is not one, or an organiser's action asked without its key.

/** The `Authorization` header's bearer token is no organiser's key (nor the admin token). */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", Message, status(401)) {
  static readonly wrongKey = () => new Unauthorized({ message: "the API key is not valid" })
  static readonly keyNeeded = () =>
    new Unauthorized({ message: "this needs the organiser's API key (the default organiser's: the ADMIN_TOKEN)" })
  static readonly adminNeeded = () => new Unauthorized({ message: "this needs the ADMIN_TOKEN" })
}

// 404: the URL names something that does not exist. A value that cannot be one of our ids is
// just another id that does not exist.

/** An endpoint this deployment does not have (`POST /organisers` without an `ADMIN_TOKEN`). */
export class NoSuchEndpoint extends Schema.TaggedError<NoSuchEndpoint>()("NoSuchEndpoint", Message, status(404)) {
  static of(method: string, url: string) {
    return new NoSuchEndpoint({ message: `no such endpoint: ${method} ${url}` })
  }
}

export class OrganiserNotFound extends Schema.TaggedError<OrganiserNotFound>()("OrganiserNotFound", Message, status(404)) {
  static of(id: string) {
    return new OrganiserNotFound({ message: `organiser ${shown(id)} does not exist` })
  }
}

export class ConcertNotFound extends Schema.TaggedError<ConcertNotFound>()("ConcertNotFound", Message, status(404)) {
  static of(id: string) {
    return new ConcertNotFound({ message: `concert ${shown(id)} does not exist` })
  }
}

export class TicketNotFound extends Schema.TaggedError<TicketNotFound>()("TicketNotFound", Message, status(404)) {
  static of(id: string) {
    return new TicketNotFound({ message: `ticket ${shown(id)} does not exist` })
  }
}

export class UserNotFound extends Schema.TaggedError<UserNotFound>()("UserNotFound", Message, status(404)) {
  static of(id: string) {
    return new UserNotFound({ message: `user ${shown(id)} does not exist` })
  }
}

export class ReservationNotFound extends Schema.TaggedError<ReservationNotFound>()(
  "ReservationNotFound",
  Message,
  status(404)
) {
  static of(id: string) {
    return new ReservationNotFound({ message: `reservation ${shown(id)} does not exist` })
  }
}

export class RegistrationNotFound extends Schema.TaggedError<RegistrationNotFound>()(
  "RegistrationNotFound",
  Message,
  status(404)
) {
  static of(id: string) {
    return new RegistrationNotFound({ message: `registration ${shown(id)} does not exist` })
  }
}

/** A concert that does not sell by draw has no draw to audit. */
export class NoDraw extends Schema.TaggedError<NoDraw>()("NoDraw", Message, status(404)) {
  static of(id: string) {
    return new NoDraw({ message: `concert ${shown(id)} does not sell by draw` })
  }
}

/** The ticket exists but has no printed form (yet, or its render failed). */
export class TicketNotPrinted extends Schema.TaggedError<TicketNotPrinted>()("TicketNotPrinted", Message, status(404)) {
  static of(id: string, printStatus: string) {
    return new TicketNotPrinted({ message: `ticket ${id} is not printed (${printStatus})` })
  }
}

// 409: not in this state, or not yet.

/** The reservation's status does not allow this. */
export class WrongState extends Schema.TaggedError<WrongState>()("WrongState", Message, status(409)) {}

/** The sale has not opened yet; try again when it has. */
export class SaleNotOpen extends Schema.TaggedError<SaleNotOpen>()("SaleNotOpen", {
  message: Schema.String,
  retryAfterSeconds: Schema.optionalWith(Schema.Int, { default: () => 1 })
}, status(409)) {
  static of(opensAt: number, now: number) {
    return new SaleNotOpen({
      message: `the sale opens at ${new Date(opensAt).toISOString()}; retry then`,
      retryAfterSeconds: Math.max(1, Math.ceil((opensAt - now) / 1000))
    })
  }
}

/** A user registers twice for one concert. */
export class AlreadyRegistered extends Schema.TaggedError<AlreadyRegistered>()("AlreadyRegistered", Message, status(409)) {
  static of(registrationId: string) {
    return new AlreadyRegistered({
      message: `this user already has a live registration for this concert: ${registrationId}`
    })
  }
}

/** Registering for a first-come concert that still has seats. */
export class NotInLine extends Schema.TaggedError<NotInLine>()("NotInLine", Message, status(409)) {
  static readonly of = () =>
    new NotInLine({ message: "seats of this concert are on sale: reserve them directly (the line opens after a sell-out)" })
}

/** Buying or reserving while a draw's line is served. */
export class ByDraw extends Schema.TaggedError<ByDraw>()("ByDraw", Message, status(409)) {
  static readonly of = () =>
    new ByDraw({ message: "this sale is by draw: register to join the line, or complete the reservation you were offered" })
}

/** A sale setting that can no longer change. */
export class SaleLocked extends Schema.TaggedError<SaleLocked>()("SaleLocked", Message, status(409)) {}

// 412: fewer seats than asked can be held now.

export class NotEnoughSeats extends Schema.TaggedError<NotEnoughSeats>()("NotEnoughSeats", {
  message: Schema.String,
  /** How many seats could be held (not on the wire: the message says it). */
  left: Schema.optional(Schema.Int),
  /** When held seats may come back (epoch milliseconds), if any are held; not on the wire. */
  reopensAt: Schema.optional(Schema.Number)
}, status(412)) {
  static of(left: number, asked: number, reopensAt?: number) {
    return new NotEnoughSeats({
      message: left === 0
        ? `no seats are left (asked for ${asked})`
        : `only ${left} seat${left === 1 ? " is" : "s are"} left (asked for ${asked}); ask for ${left} or fewer`,
      left,
      ...(reopensAt === undefined ? {} : { reopensAt })
    })
  }
}

// 422: the purchase cannot be made.

export class SoldOut extends Schema.TaggedError<SoldOut>()("SoldOut", {
  message: Schema.String,
  /** When held seats may come back (epoch milliseconds), if any are held; not on the wire. */
  reopensAt: Schema.optional(Schema.Number)
}, status(422)) {
  static readonly of = (reopensAt?: number) =>
    new SoldOut({ message: "the concert is sold out", ...(reopensAt === undefined ? {} : { reopensAt }) })
}

export class ConcertCancelled extends Schema.TaggedError<ConcertCancelled>()("ConcertCancelled", Message, status(422)) {
  static readonly of = () => new ConcertCancelled({ message: "the concert is cancelled" })
}

/** The same `Idempotency-Key` was already used to buy a ticket with a different body. */
export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>()(
  "IdempotencyKeyReused",
  Message,
  status(422)
) {
  static readonly of = () =>
    new IdempotencyKeyReused({ message: "this Idempotency-Key was already used for a different purchase" })
}

// 503: retry later; each carries the `Retry-After` it is sent with.

/** The cluster could not take the request now: a full concert mailbox, a shard moving. */
export class Busy extends Schema.TaggedError<Busy>()("Busy", Message, status(503)) {
  get retryAfterSeconds(): number {
    return 1
  }
}

/** The journal could not be written; nothing was saved. */
export class NotSaved extends Schema.TaggedError<NotSaved>()("NotSaved", Message, status(503)) {
  get retryAfterSeconds(): number {
    return 1
  }
}

/** A concert's first seating plan is still being drawn. */
export class PlanNotReady extends Schema.TaggedError<PlanNotReady>()("PlanNotReady", Message, status(503)) {
  static readonly of = () => new PlanNotReady({ message: "the seating plan is being rendered; retry shortly" })
  get retryAfterSeconds(): number {
    return 1
  }
}

/** A new organiser's `database_url` could not be reached or migrated. */
export class DatabaseUrlUnusable extends Schema.TaggedError<DatabaseUrlUnusable>()("DatabaseUrlUnusable", Message, status(422)) {}

/** The organiser's database could not be created on the main database's server. */
export class OrganiserNotCreated extends Schema.TaggedError<OrganiserNotCreated>()("OrganiserNotCreated", Message, status(503)) {}

/** The database does not answer: the health endpoints' 503. */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()(
  "DatabaseUnavailable",
  Message,
  status(503)
) {
  static readonly of = () => new DatabaseUnavailable({ message: "the database is not answering" })
  get retryAfterSeconds(): number {
    return 1
  }
}

/** The `Retry-After` an error is answered with, if it has one. */
export const retryAfterSeconds = (error: unknown): number | undefined =>
  typeof error === "object" && error !== null && "retryAfterSeconds" in error &&
    typeof error.retryAfterSeconds === "number"
    ? error.retryAfterSeconds
    : undefined

// What the framework raises itself, declared so the OpenAPI document shows it; answered by
// `ErrorResponses` with the same body.

/** The body is not JSON, or does not decode. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", Message, status(400)) {}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", Message, status(413)) {}

const ErrorBody = Schema.Struct({ error: Schema.String })

type ErrorClass<A extends { readonly message: string }> =
  & (new(props: { readonly message: string }) => A)
  & Schema.Schema<A, any>

const asJson = new WeakMap<object, Schema.Schema<any, { readonly error: string }>>()

/**
 * An error class as the API sends it: `{"error": message}` with the class's status. This is
 * the form endpoints declare; the class itself stays what code fails with. One schema per
 * class, however many endpoints declare it.
 */
export const Json = <A extends { readonly message: string }>(
  error: ErrorClass<A>
): Schema.Schema<A, { readonly error: string }> => {
  const known = asJson.get(error)
  if (known !== undefined) return known
  const schema = Schema.transform(ErrorBody, Schema.typeSchema(error), {
    strict: true,
    decode: ({ error: message }) => new error({ message }),
    encode: ({ message }) => ({ error: message })
  }).annotations(HttpApiSchema.annotations({ status: HttpApiSchema.getStatusError(error) }))
  asJson.set(error, schema)
  return schema
}
