/** The config's JSON Schema compiled to code at build time (scripts/gen-config-validator.mjs): ajv's standalone validator. */
export interface SchemaError { instancePath: string; schemaPath: string; keyword: string; params: Record<string, unknown>; message?: string }
declare const validate: ((data: unknown) => boolean) & { errors?: SchemaError[] | null };
export default validate;
