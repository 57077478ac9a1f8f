"""Closed-loop evaluation of a policy in the simulator (``positronic-inference sim``).

- ``success``: when an iteration counts as a success (score over a threshold, held);
- ``results``: per-iteration results, the run summary (success rate, Wilson interval), table and JSON;
- ``plot``: the summary PNG (success per iteration, score over time);
- ``recorder``: each iteration as a raw episode (``positronic.dataset``);
- ``retry``: bounded retries while the policy's server is unreachable;
- ``episode``: one iteration's control loop (observe, query, execute, step) with fault handling;
- ``drivers``: what starts and stops iterations (``timed``, ``keyboard``);
- ``viewer``: the live camera window;
- ``interrupts``: Ctrl+C deferred to the next control tick, so recordings and the summary stay consistent;
- ``runner``: a whole run: world, policy, driver, recording and summary outputs.
"""
