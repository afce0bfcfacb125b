/** What a user types into `apiary demo`: good lines parse, every bad one says what was wrong and what to type. */
import { describe, expect, it } from 'vitest';
import { parseDemoInput } from '../../../runtime/cli/demo/demo-input.js';
import { describeError, isApiaryError } from '../../../runtime/errors.js';

const error = (line: string, count = 3): string => {
  try {
    parseDemoInput(line, count);
  } catch (err) {
    expect(isApiaryError(err, 'APIARY_USAGE_INVALID')).toBe(true);
    return describeError(err);
  }
  throw new Error(`"${line}" parsed`);
};

describe('demo input', () => {
  it('parses every command', () => {
    expect(parseDemoInput('  cut 1   2 ', 3)).toEqual({ command: 'cut', a: 1, b: 2 });
    expect(parseDemoInput('heal 3 1', 3)).toEqual({ command: 'heal', a: 3, b: 1 });
    expect(parseDemoInput('heal', 3)).toEqual({ command: 'heal-all' });
    expect(parseDemoInput('split 1 2,3', 3)).toEqual({ command: 'split', groups: [[1], [2, 3]] });
    expect(parseDemoInput('swarm 3', 3)).toEqual({ command: 'swarm', node: 3 });
    expect(parseDemoInput('SHOW', 3)).toEqual({ command: 'show' });
    expect(parseDemoInput('q', 3)).toEqual({ command: 'quit' });
    expect(parseDemoInput('   ', 3)).toEqual({ command: 'nothing' });
  });

  it('names the valid node range, and what to type, for each mistake', () => {
    expect(error('swarm 7')).toBe('APIARY_USAGE_INVALID: there is no hive-7: this demo has hive-1 to hive-3\n  fix: type a number from 1 to 3, e.g. swarm 1');
    expect(error('swarm 0')).toContain('there is no hive-0');
    expect(error('swarm two')).toBe('APIARY_USAGE_INVALID: "two" is not a node number\n  fix: type a number from 1 to 3, e.g. swarm 1');
    expect(error('swarm 1 2')).toContain('swarm needs one node number, got "1 2"');
    expect(error('heal 1')).toBe('APIARY_USAGE_INVALID: heal needs two node numbers (the two ends of a link), got "1"\n  fix: type heal 1 2, or heal alone to heal every link');
    expect(error('cut')).toBe('APIARY_USAGE_INVALID: cut needs two node numbers (the two ends of a link), got none\n  fix: type cut 1 2');
    expect(error('cut 1 2 3')).toContain('got "1 2 3"');
    expect(error('cut 2 2')).toBe('APIARY_USAGE_INVALID: hive-2 has no link to itself\n  fix: name two different nodes, e.g. cut 2 1');
    expect(error('cut 1 9', 5)).toContain('there is no hive-9: this demo has hive-1 to hive-5');
    expect(error('split')).toContain('split needs two or more groups, got none');
    expect(error('split 1,2,3')).toContain('got only one: "1,2,3"');
    expect(error('split 1,2 2,3')).toContain('hive-2 is in two groups');
    expect(error('split 1 2,4')).toContain('there is no hive-4');
    expect(error('show 1')).toContain('show takes no arguments');
    expect(error('fly')).toMatch(/unknown command "fly"\n {2}fix: type one of the commands below\ncommands \(type and press Enter\):/);
  });
});
