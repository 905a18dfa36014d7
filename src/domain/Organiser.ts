/**
 * Organisers (ONSALE.md §5). Each has a number, and every id made for its data (its concerts,
 * tickets, reservations, registrations, and the organiser itself) carries that number: a UUID of
 * version 8 whose first 32 bits are the organiser's number, the other 90 random. Any id then
 * says which organiser's database holds it, without a directory look-up on a buyer's path. The
 * default organiser is number 0; its ids are plain random UUIDs (version 4), as they always were.
 */
import { FiberRef, Schema } from "effect"
import * as crypto from "node:crypto"

/** The default organiser: the course API's, whose data is the main database. */
export const defaultOrganiser = 0

/** The largest organiser number an id can carry. */
export const maxOrganiser = 0xffff_ffff

/** The organiser whose data an id belongs to: its number for a version-8 id, the default otherwise. */
export const organiserOf = (id: string): number =>
  id.length === 36 && id.charCodeAt(14) === 56 /* "8" */ ? Number.parseInt(id.slice(0, 8), 16) || defaultOrganiser : defaultOrganiser

/** A new id for `organiser`'s data: 122 random bits for the default organiser, 90 for others. */
export const newId = (organiser: number): string => {
  const random = crypto.randomUUID()
  if (organiser === defaultOrganiser) return random
  return organiser.toString(16).padStart(8, "0") + random.slice(8, 14) + "8" + random.slice(15)
}

/**
 * The organiser whose database the current fiber works in. Set around a request once its caller
 * and the ids it names are known, around a concert entity by its id, and around each piece of
 * background work; the database client reads it for every statement (`OrganiserDatabases`).
 */
export const CurrentOrganiser: FiberRef.FiberRef<number> = FiberRef.unsafeMake(defaultOrganiser)

/** What `POST /organisers` takes. */
export class CreateOrganiser extends Schema.Class<CreateOrganiser>("CreateOrganiser")({
  name: Schema.String.pipe(Schema.trimmed(), Schema.minLength(1), Schema.maxLength(200)),
  database_url: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(2000)), { exact: true })
}) {}

/** What `POST /organisers` answers: the key is shown this once. */
export class OrganiserCreated extends Schema.Class<OrganiserCreated>("OrganiserCreated")({
  id: Schema.UUID,
  name: Schema.String,
  api_key: Schema.String
}) {}

/** One organiser, as `GET /organisers` lists it. */
export class OrganiserSummary extends Schema.Class<OrganiserSummary>("OrganiserSummary")({
  id: Schema.UUID,
  name: Schema.String,
  created_at: Schema.String
}) {}
