"""Learn the matcher's `Projection` from reader questions (used by scripts/train_decision.py).

The projection is a 384 x 384 matrix A applied to every sentence vector (then scaled back to unit
length). It is fitted so that, within each training story, a reader's question is closest to the
phrasings of the entry that answers it, and a question the story does not answer is closer to a
learnt bar than to any phrasing:

    loss(question) = -log  sum_{phrasings p of a right entry} exp(cos(Aq, Ap) / tau)
                           / (sum_{all phrasings p} exp(cos(Aq, Ap) / tau) + exp(bar / tau))

(for an out-of-scope question the numerator is exp(bar / tau)), averaged over the questions, plus
`lam` * |A - I|^2, which keeps A near the identity: the sentence model's sense of meaning is kept
and only bent towards how readers ask. The gradient is written out by hand (numpy), and
scipy's L-BFGS minimises it; scipy comes with scikit-learn, a dev extra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LAM = 0.01
"""Pull towards the identity. Held out by story (10 stories): 0.003, 0.01 and 0.03 gave 82.8%, 82.8%
and 82.1% top-1 and 47.4%, 49.1% and 49.4% right at a single bar refusing 92%; the raw model 79.1%
and 37.9%."""
TAU = 0.05
"""Softmax temperature over cosines (0.1 and 0.03 gave the same held-out figures within a point)."""
ITERATIONS = 200


@dataclass
class Story:
    """One training story's vectors, as the sentence model gives them (unit length)."""

    phrasings: np.ndarray  # (p, d)
    owner: np.ndarray  # (p,) the entry index of each phrasing
    questions: np.ndarray  # (q, d)
    expect: list[list[int]]  # per question: entry indexes that answer it (empty: none)

    def right_phrasings(self) -> np.ndarray:
        """(q, p): 1.0 where the phrasing belongs to an entry that answers the question."""
        return np.stack([np.isin(self.owner, e).astype(np.float32) for e in self.expect])


def _unit(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / norms, norms


def loss_and_gradient(
    theta: np.ndarray, stories: list[tuple[Story, np.ndarray]], lam: float, tau: float
) -> tuple[float, np.ndarray]:
    """The loss above and its gradient; theta is (A - I) flattened, then the bar."""
    d = stories[0][0].phrasings.shape[1]
    delta = theta[:-1].reshape(d, d)
    bar = theta[-1]
    a = (np.eye(d) + delta).astype(np.float32)
    total, grad_a, grad_bar, count = 0.0, np.zeros((d, d)), 0.0, 0
    for story, right in stories:
        up, pn = _unit(story.phrasings @ a.T)
        uq, qn = _unit(story.questions @ a.T)
        s = (uq @ up.T) / tau
        null = bar / tau
        top = np.maximum(s.max(1), null)
        e = np.exp(s - top[:, None])
        e_null = np.exp(null - top)
        z = e.sum(1) + e_null
        g = e / z[:, None]  # d loss / d s, before the numerator's part
        g_null = e_null / z
        inside = right.any(1)
        numerator = np.where(inside, (e * right).sum(1), e_null)
        total += float(np.sum(np.log(z) - np.log(numerator)))
        g -= np.where(inside[:, None], e * right / np.where(inside, numerator, 1.0)[:, None], 0.0)
        g_null = g_null - np.where(inside, 0.0, 1.0)
        count += len(story.questions)
        grad_bar += float(g_null.sum()) / tau
        duq = g @ up / tau
        dup = g.T @ uq / tau
        dzq = (duq - uq * (duq * uq).sum(1, keepdims=True)) / qn
        dzp = (dup - up * (dup * up).sum(1, keepdims=True)) / pn
        grad_a += dzq.T @ story.questions + dzp.T @ story.phrasings
    loss = total / count + lam * float((delta * delta).sum())
    grad = np.concatenate([(grad_a / count + 2 * lam * delta).ravel(), [grad_bar / count]])
    return loss, grad


def fit_projection(stories: list[Story], lam: float = LAM, tau: float = TAU) -> np.ndarray:
    """The matrix A fitted on these stories (deterministic: L-BFGS from the identity)."""
    from scipy.optimize import minimize

    d = stories[0].phrasings.shape[1]
    prepared = [(s, s.right_phrasings()) for s in stories]
    theta = np.zeros(d * d + 1)
    theta[-1] = 0.6
    result = minimize(
        loss_and_gradient,
        theta,
        args=(prepared, lam, tau),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": ITERATIONS},
    )
    matrix: np.ndarray = np.eye(d) + result.x[:-1].reshape(d, d)
    return matrix
