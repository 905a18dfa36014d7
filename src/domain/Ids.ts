import { Schema } from "effect"

/** Concert ids are UUIDs the service generates. */
export const ConcertId = Schema.UUID.pipe(Schema.brand("ConcertId"))
export type ConcertId = typeof ConcertId.Type

/** Ticket ids are UUIDs the service generates. */
export const TicketId = Schema.UUID.pipe(Schema.brand("TicketId"))
export type TicketId = typeof TicketId.Type

/** User ids come from the users list, which a deployment may replace: any non-empty string. */
export const UserId = Schema.NonEmptyString.pipe(Schema.brand("UserId"))
export type UserId = typeof UserId.Type

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether a raw path or query value can name a service-generated id at all. */
export const isUuid = (value: string): boolean => uuidPattern.test(value)
