/// A node or module read from its table, possibly incomplete when the table had problems (they are logged).
struct Decoded<Value> {
    let value: Value
    /// Names the table in messages by its name: `module "AM"`.
    let context: String
    /// Names the table by its position, for when two share a name: `[[module]] 2`.
    let position: String
}
