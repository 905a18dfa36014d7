import { Schema } from "effect"
import { UserId } from "./Ids.js"

export class User extends Schema.Class<User>("User")({
  id: UserId,
  name: Schema.String,
  email: Schema.String
}) {}

/** The shape of a users file (`USERS_FILE`): a JSON array of users. */
export const UserList = Schema.Array(User)
