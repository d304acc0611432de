/**
 * BullMQ, the job queue (on Redis) that spreads grids of training runs over
 * machines. Apart from deps.ts so that only the grid's coordinator and
 * workers load it.
 */
export { Job, Queue, QueueEvents, Worker } from "bullmq";
