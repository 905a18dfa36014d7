/**
 * The users mock: the list of users this service accepts purchases from. By default a fixed list
 * of 5,000 users generated deterministically here (ids `00000000-0000-0000-0000-00000000NNNN`);
 * `USERS_FILE` replaces it with a JSON file of the same shape, served exactly as given.
 */
import { Config, Effect, Option, Schema } from "effect"
import * as fs from "node:fs/promises"
import { UserId } from "../domain/Ids.js"
import { User, UserList } from "../domain/User.js"

const firstNames = [
  "Olivia", "Liam", "Amelia", "Noah", "Isla", "Oliver", "Charlotte", "Jack", "Mia", "William",
  "Ava", "Henry", "Grace", "Leo", "Chloe", "Thomas", "Zoe", "James", "Ruby", "Lucas",
  "Aroha", "Tane", "Priya", "Arjun", "Mei", "Hiroshi", "Fatima", "Omar", "Sofia", "Mateo",
  "Ngaio", "Kai", "Siobhan", "Declan", "Ingrid", "Lars", "Amara", "Kwame", "Yuki", "Anika"
] as const

const lastNames = [
  "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin", "White",
  "Anderson", "Walker", "Thompson", "Harris", "Lee", "Ryan", "Robinson", "Kelly", "King", "O'Brien",
  "Patel", "Singh", "Chen", "Wang", "Kim", "Tanaka", "Haddad", "Rossi", "Garcia", "Müller",
  "Ngata", "Te Awa", "MacDonald", "O'Connor", "Johansson", "Novak", "Okafor", "Mensah", "Sato", "Dubois"
] as const

/** Numbers that look random but are the same on every machine (mulberry32). */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

export const defaultUsers = (count = 5000): ReadonlyArray<User> => {
  const random = seeded(6400)
  const pick = <A>(list: ReadonlyArray<A>) => list[Math.floor(random() * list.length)]!
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1
    const first = pick(firstNames)
    const last = pick(lastNames)
    const local = `${first}.${last}`.toLowerCase().normalize("NFD").replace(/[^a-z.]/g, "")
    return new User({
      id: UserId.make(`00000000-0000-0000-0000-${String(n).padStart(12, "0")}`),
      name: `${first} ${last}`,
      email: `${local}${n}@example.org`
    })
  })
}

const loadFile = (file: string) =>
  Effect.tryPromise(() => fs.readFile(file, "utf8")).pipe(
    Effect.flatMap((text) => Effect.try(() => JSON.parse(text) as unknown)),
    Effect.flatMap(Schema.decodeUnknown(UserList)),
    Effect.mapError((cause) => new Error(`USERS_FILE ${file} is not a JSON list of {id, name, email}: ${String(cause)}`)),
    Effect.orDie
  )

export class UserDirectory extends Effect.Service<UserDirectory>()("UserDirectory", {
  effect: Effect.gen(function*() {
    const file = yield* Config.option(Config.string("USERS_FILE"))
    const users = Option.isSome(file) ? yield* loadFile(file.value) : defaultUsers()
    const byId = new Map(users.map((user) => [user.id as string, user]))
    const encode = Schema.encodeSync(UserList)
    // Served on every GET /users: encoded once, to bytes every response shares.
    const listBytes = new TextEncoder().encode(JSON.stringify(encode(users)))
    yield* Effect.logInfo("users loaded").pipe(
      Effect.annotateLogs({ count: users.length, source: Option.getOrElse(file, () => "built-in") })
    )
    return {
      listBytes,
      find: (id: string): Option.Option<User> => Option.fromNullable(byId.get(id)),
      has: (id: string): boolean => byId.has(id)
    } as const
  })
}) {}
