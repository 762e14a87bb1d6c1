/** The no-op job of the Sidequest peer: Sidequest loads job classes by the file that defines them. */
import { Job } from 'sidequest';

export class NoopJob extends Job {
  run(i: number): number {
    return i;
  }
}
