import { Schema } from "effect"
import { ConcertId } from "./Ids.js"

export const ConcertStatus = Schema.Literal("ACTIVE", "CANCELLED", "SOLD_OUT")
export type ConcertStatus = typeof ConcertStatus.Type

/** The largest concert the service accepts (the spec's assumption, enforced). */
export const MaxCapacity = 150_000

const isCalendarDate = (s: string): boolean => {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s)
  if (match === null) return false
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])]
  const date = new Date(Date.UTC(year, month - 1, day))
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
}

/** A calendar date written `YYYY-MM-DD`. */
export const ConcertDate = Schema.String.pipe(
  Schema.filter(isCalendarDate, { message: () => "date must be a calendar date written YYYY-MM-DD" })
)

/**
 * Control characters (NUL, ESC, …), the non-characters U+FFFE and U+FFFF and halves of
 * surrogate pairs: PostgreSQL refuses NUL, and the others cannot appear in the XML of a printed
 * ticket or a seating plan.
 */
const unprintable = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

const Text = (field: string) =>
  Schema.String.pipe(
    Schema.filter((s) => s.trim().length > 0, { message: () => `${field} must not be empty` }),
    Schema.filter((s) => s.length <= 500, { message: () => `${field} must be at most 500 characters` }),
    Schema.filter((s) => !unprintable.test(s), { message: () => `${field} must not contain control characters` })
  )

export const ConcertName = Text("name")
export const ConcertVenue = Text("venue")

export const Capacity = Schema.Number.pipe(
  Schema.filter((n) => Number.isInteger(n) && n >= 1 && n <= MaxCapacity, {
    message: () => `capacity must be a whole number from 1 to ${MaxCapacity}`
  })
)

export class Concert extends Schema.Class<Concert>("Concert")({
  id: ConcertId,
  name: Schema.String,
  venue: Schema.String,
  date: Schema.String,
  capacity: Schema.Int,
  status: ConcertStatus
}) {}

/** A stored concert's fields, as the API shows them. */
export type ConcertRow = typeof Concert.Encoded

/** A concert's JSON, as its schema encodes it (fields in that order), for lists written as text. */
export const concertJson = (concert: ConcertRow): string =>
  JSON.stringify({
    id: concert.id,
    name: concert.name,
    venue: concert.venue,
    date: concert.date,
    capacity: concert.capacity,
    status: concert.status
  })

/** Unknown fields are refused rather than silently dropped: a typo must not pass as a no-op. */
const strict = { parseOptions: { onExcessProperty: "error" } } as const

export const CreateConcert = Schema.Struct({
  name: ConcertName,
  venue: ConcertVenue,
  date: ConcertDate,
  capacity: Capacity,
  status: ConcertStatus
}).annotations({ identifier: "ConcertRequest", ...strict })
export type CreateConcert = typeof CreateConcert.Type

/** PUT body: any subset of the updatable fields; `id` and `capacity` are not among them. */
export const UpdateConcert = Schema.Struct({
  name: Schema.optionalWith(ConcertName, { exact: true }),
  venue: Schema.optionalWith(ConcertVenue, { exact: true }),
  date: Schema.optionalWith(ConcertDate, { exact: true }),
  status: Schema.optionalWith(ConcertStatus, { exact: true })
}).annotations({ identifier: "ConcertPut", ...strict })
export type UpdateConcert = typeof UpdateConcert.Type
