/** The sensor-node application's defaults: rules over readings only (no model is loaded at all). */
import type { RuleInput } from '../../extensions/rules/config.js';

export const SENSOR_NODE_NAME = 'Apiary sensor node';

export const SENSOR_NODE_RULES: RuleInput[] = [
  { id: 'too-warm', input: 'reading.temperature', above: 35, clearAt: 33, for: '5m', severity: 'warning', message: 'It is too warm' },
  { id: 'condensation-risk', input: 'reading.dew_point_margin', below: 2, clearAt: 3, for: '10m', severity: 'warning', message: 'The air is within 2 °C of its dew point: condensation is likely' },
];
