import { LuaScript } from './lua-script.js';

/** The one Lua script that stores an event and its delivery jobs: src/lua/store-event.lua says how and why. */
export const STORE_SCRIPT = LuaScript.fromFile('store-event');

/** The BullMQ keys of one target's queue that the script writes, in KEYS order. */
export const JOB_KEY_NAMES = ['wait', 'paused', 'meta', 'id', 'active', 'events', 'marker'] as const;
